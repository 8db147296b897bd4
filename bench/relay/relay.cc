// The floor under any proxy on this box: a keep-alive relay that does no work
// of its own, once on epoll and once on io_uring (multishot recv into a
// provided-buffer ring). Each client connection gets its own upstream
// connection and bytes pass both ways untouched, so a request costs what an
// HTTP proxy's does in the kernel (one recv and one send per side) and nearly
// nothing in user space. Run beside nginx and sluice by bench/relay/run.sh, it
// answers two questions: how far below nginx's CPU per request can any proxy
// get here, and does changing the I/O model lower the kernel's share.
//
//   relay epoll|uring LISTEN_PORT UPSTREAM_PORT
//
// Single thread, loopback only. A measuring tool, not a proxy: no timeouts, no
// HTTP, no backpressure (the epoll flavour buffers whatever a slow peer has not
// taken), and connect() blocks (connections are made during the warm-up).
// URING_FLAGS overrides the io_uring setup flags (default SINGLE_ISSUER |
// DEFER_TASKRUN, which needs Linux 6.1).
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::perror(what);  // NOLINT(concurrency-mt-unsafe): single-threaded tool
  std::exit(1);       // NOLINT(concurrency-mt-unsafe)
}

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int listenOn(int port, bool nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
  if (listen(fd, 4096) != 0) die("listen");
  return fd;
}

int connectUpstream(int port, bool nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (nonblocking) {
    int on = 1;
    ioctl(fd, FIONBIO, &on);
  }
  return fd;
}

constexpr size_t kBufSize = size_t{32} * 1024;

// ---------------------------------------------------------------- epoll ----
// nginx's shape: edge-triggered, one read per event unless the buffer filled,
// write at once, EPOLLOUT only when a write comes up short.
struct Side {
  explicit Side(int f) : fd(f) {}
  int fd = -1;
  Side* peer = nullptr;
  std::string pending;  // bytes read from peer, not yet written to fd
  bool dead = false;
};

void relayEpoll(int listen_port, int upstream_port) {
  int ep = epoll_create1(0);
  int lfd = listenOn(listen_port, true);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::vector<char> buf(kBufSize);
  std::vector<epoll_event> events(512);

  std::vector<Side*> graveyard;  // freed after the batch: later events may name them
  auto close_pair = [&](Side* s) {
    for (Side* x : {s, s->peer}) {
      if (!x->dead) {
        x->dead = true;
        close(x->fd);
        graveyard.push_back(x);
      }
    }
  };
  auto flush = [&](Side* s) -> bool {
    while (!s->pending.empty()) {
      ssize_t n = send(s->fd, s->pending.data(), s->pending.size(), MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN;
      s->pending.erase(0, static_cast<size_t>(n));
    }
    return true;
  };
  for (;;) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    for (int i = 0; i < n; ++i) {
      auto* s = static_cast<Side*>(events[i].data.ptr);
      if (s != nullptr && s->dead) continue;
      if (s == nullptr) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* a = new Side(c);
          auto* b = new Side(connectUpstream(upstream_port, true));
          a->peer = b;
          b->peer = a;
          for (Side* x : {a, b}) {
            epoll_event e{};
            e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            e.data.ptr = x;
            epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &e);
          }
        }
        continue;
      }
      if ((events[i].events & EPOLLOUT) != 0 && !s->pending.empty() && !flush(s)) {
        close_pair(s);
        continue;
      }
      if ((events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0) {
        continue;
      }
      bool closed = false;
      for (;;) {
        ssize_t r = recv(s->fd, buf.data(), buf.size(), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          closed = true;
          break;
        }
        if (r < 0) break;
        Side* p = s->peer;
        p->pending.append(buf.data(), static_cast<size_t>(r));
        if (!flush(p)) {
          closed = true;
          break;
        }
        if (static_cast<size_t>(r) < buf.size()) break;
      }
      if (closed) close_pair(s);
    }
    for (Side* x : graveyard) delete x;
    graveyard.clear();
  }
}

// --------------------------------------------------------------- uring -----
// One multishot recv per socket into a shared provided-buffer ring; a received
// buffer is sent to the peer as is and returned to the ring when the send
// completes. One send in flight per socket keeps the byte order.
constexpr unsigned kBufCount = 4096;  // power of two
constexpr int kGroup = 1;

enum Op : uint64_t { OpAccept = 1, OpRecv = 2, OpSend = 3 };

struct Conn;
struct Chunk {
  uint16_t bid;
  uint32_t off;
  uint32_t len;
};
struct Conn {
  explicit Conn(int f) : fd(f) {}
  int fd = -1;
  Conn* peer = nullptr;
  std::deque<Chunk> queue;  // chunks to send to fd; front is in flight
  bool closing = false;
  int inflight = 0;  // SQEs whose CQE has not come back
};

struct Uring {
  io_uring ring{};
  io_uring_buf_ring* br = nullptr;
  char* bufs = nullptr;
  int upstream_port = 0;
  int lfd = -1;

  static uint64_t tag(Op op, Conn* c) { return reinterpret_cast<uint64_t>(c) | op; }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    if (s == nullptr) {
      io_uring_submit(&ring);
      s = io_uring_get_sqe(&ring);
    }
    return s;
  }
  [[nodiscard]] char* buffer(uint16_t bid) const {
    return bufs + static_cast<size_t>(bid) * kBufSize;
  }
  void giveBack(uint16_t bid) {  // NOLINT(readability-make-member-function-const): writes the ring
    io_uring_buf_ring_add(br, buffer(bid), kBufSize, bid, io_uring_buf_ring_mask(kBufCount), 0);
    io_uring_buf_ring_advance(br, 1);
  }
  void armAccept() {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, lfd, nullptr, nullptr, SOCK_NONBLOCK);
    io_uring_sqe_set_data64(s, OpAccept);
  }
  void armRecv(Conn* c) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv_multishot(s, c->fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kGroup;
    io_uring_sqe_set_data64(s, tag(OpRecv, c));
    ++c->inflight;
  }
  void sendFront(Conn* c) {
    const Chunk& ch = c->queue.front();
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c->fd, buffer(ch.bid) + ch.off, ch.len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(OpSend, c));
    ++c->inflight;
  }
  void shut(Conn* c) {
    for (Conn* x : {c, c->peer}) {
      if (!x->closing) {
        x->closing = true;
        shutdown(x->fd, SHUT_RDWR);  // ends the multishot recv
      }
    }
  }
  void maybeFree(Conn* c) {
    Conn* p = c->peer;
    if (c->closing && p->closing && c->inflight == 0 && p->inflight == 0) {
      for (Conn* x : {c, p}) {
        for (const Chunk& ch : x->queue) giveBack(ch.bid);
        close(x->fd);
      }
      delete c;
      delete p;
    }
  }

  void onCqe(io_uring_cqe* cqe) {
    uint64_t d = io_uring_cqe_get_data64(cqe);
    auto op = static_cast<Op>(d & 7);
    if (op == OpAccept) {
      if (cqe->res >= 0) {
        int one = 1;
        setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto* a = new Conn(cqe->res);
        auto* b = new Conn(connectUpstream(upstream_port, true));
        a->peer = b;
        b->peer = a;
        armRecv(a);
        armRecv(b);
      }
      if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
        armAccept();
      }
      return;
    }
    auto* c = reinterpret_cast<Conn*>(d & ~uint64_t{7});  // NOLINT(performance-no-int-to-ptr)
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more) --c->inflight;
    if (op == OpRecv) {
      if (cqe->res > 0) {
        auto bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        Conn* p = c->peer;
        if (p->closing) {
          giveBack(bid);
        } else {
          p->queue.push_back({bid, 0, static_cast<uint32_t>(cqe->res)});
          if (p->queue.size() == 1) sendFront(p);
        }
        if (!more && !c->closing) armRecv(c);
      } else if (cqe->res == -ENOBUFS && !c->closing) {
        armRecv(c);
      } else {
        shut(c);
      }
    } else {  // OpSend
      Chunk& ch = c->queue.front();
      if (cqe->res <= 0) {
        shut(c);
      } else if (static_cast<uint32_t>(cqe->res) < ch.len) {
        ch.off += static_cast<uint32_t>(cqe->res);
        ch.len -= static_cast<uint32_t>(cqe->res);
        if (!c->closing) sendFront(c);
      } else {
        giveBack(ch.bid);
        c->queue.pop_front();
        if (!c->queue.empty() && !c->closing) sendFront(c);
      }
    }
    maybeFree(c);
  }

  void run(int listen_port) {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (const char* f = std::getenv("URING_FLAGS")) {  // NOLINT(concurrency-mt-unsafe)
      p.flags = static_cast<unsigned>(std::strtoul(f, nullptr, 0));
    }
    int rc = io_uring_queue_init_params(4096, &ring, &p);
    if (rc < 0) {
      errno = -rc;
      die("io_uring_queue_init_params");
    }
    size_t ring_bytes = kBufCount * sizeof(io_uring_buf);
    void* mem =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
      die("mmap");
    }
    br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br);
    reg.ring_entries = kBufCount;
    reg.bgid = kGroup;
    rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc < 0) {
      errno = -rc;
      die("io_uring_register_buf_ring");
    }
    bufs = static_cast<char*>(std::aligned_alloc(4096, kBufCount * kBufSize));
    for (unsigned i = 0; i < kBufCount; ++i) {
      io_uring_buf_ring_add(br, buffer(static_cast<uint16_t>(i)), kBufSize,
                            static_cast<uint16_t>(i), io_uring_buf_ring_mask(kBufCount),
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br, static_cast<int>(kBufCount));

    lfd = listenOn(listen_port, false);
    armAccept();
    for (;;) {
      io_uring_submit_and_wait(&ring, 1);
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        onCqe(cqe);
        ++seen;
      }
      io_uring_cq_advance(&ring, seen);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s epoll|uring LISTEN_PORT UPSTREAM_PORT\n", argv[0]);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  int lp = std::atoi(argv[2]);
  int up = std::atoi(argv[3]);
  if (std::strcmp(argv[1], "epoll") == 0) {
    relayEpoll(lp, up);
  } else if (std::strcmp(argv[1], "uring") == 0) {
    static Uring u;
    u.upstream_port = up;
    u.run(lp);
  } else {
    std::fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  }
}
