#include "gateway/server/fleet.h"

#include <array>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace sluice::gateway::server {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

std::string hostName() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "sluice";
  return name.data();
}

}  // namespace

Fleet::Self Fleet::describe(const config::Config& config, const config::EtcdRegister& r) {
  Self s;
  const config::Address listener =
      config.listeners.empty() ? config::Address{} : config.listeners.front().address;
  s.address = r.address.port != 0 ? r.address.text() : listener.text();
  s.name = !r.name.empty() ? r.name : hostName() + "-" + std::to_string(listener.port);
  if (config.admin) s.admin = "http://" + config.admin->address.text();
  return s;
}

Fleet::Fleet(asio::io_context& io, etcd::EtcdClient& client, config::EtcdRegister settings,
             Self self, std::uint64_t generation)
    : io_(io),
      client_(client),
      settings_(std::move(settings)),
      self_(std::move(self)),
      key_(settings_.prefix + self_.name),
      generation_(generation),
      started_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count()),
      members_(io, client, etcd::KeyRange::prefix(settings_.prefix),
               [this](const etcd::RangeWatch::State& s) { seen_ = s; }),
      retry_(io) {}

Fleet::~Fleet() { stop(); }

auto Fleet::onMain() const {
  return [&io = io_, alive = std::weak_ptr<char>(alive_)](auto f) {
    asio::post(io, [alive, f = std::move(f)]() mutable {
      if (!alive.expired()) f();
    });
  };
}

void Fleet::start() {
  members_.start();
  grant();
}

void Fleet::stop() {
  if (stopped_) return;
  stopped_ = true;
  retry_.cancel();
  keep_alive_.cancel();
  members_.stop();
}

void Fleet::leave() {
  if (left_) return;
  left_ = true;
  retry_.cancel();
  keep_alive_.cancel();
  if (lease_ == 0) return;
  revoked_ = std::make_shared<std::promise<void>>();
  client_.leaseRevoke(lease_,
                      [done = revoked_](const etcd::Result<etcd::Empty>&) { done->set_value(); });
  lease_ = 0;
}

void Fleet::waitLeft(std::chrono::milliseconds limit) {
  if (revoked_) (void)revoked_->get_future().wait_for(limit);
  revoked_.reset();
}

void Fleet::setGeneration(std::uint64_t generation) {
  generation_ = generation;
  if (lease_ != 0 && !left_) write();
}

std::string Fleet::value() const {
  json v = {{"address", self_.address},
            {"version", SLUICE_VERSION},
            {"generation", generation_},
            {"pid", ::getpid()},
            {"started_ms", started_ms_}};
  if (!self_.admin.empty()) v["admin"] = self_.admin;
  return v.dump();
}

void Fleet::grant() {
  const auto ttl = std::chrono::ceil<std::chrono::seconds>(settings_.ttl);
  client_.leaseGrant(ttl, [this, ttl, on_main = onMain()](etcd::Result<etcd::LeaseGrant> r) {
    on_main([this, ttl, on_main, r = std::move(r)] {
      if (left_ || stopped_) return;
      if (!r.ok()) {
        spdlog::warn("fleet: cannot register {} in etcd: {}; trying again in 1 s", key_,
                     r.status.message);
        retryLater();
        return;
      }
      lease_ = r.value.id;
      keep_alive_ = client_.keepAlive(lease_, ttl, [this, on_main](const etcd::Status& why) {
        on_main([this, why] {
          if (left_ || stopped_) return;
          spdlog::warn("fleet: the lease of {} is lost ({}); registering again", key_, why.message);
          retry_.cancel();  // a pending rewrite would need the lost lease
          lease_ = 0;
          grant();
        });
      });
      write();
    });
  });
}

void Fleet::write() {
  client_.put(
      key_, value(),
      [this, on_main = onMain()](const etcd::Result<etcd::PutResponse>& r) {
        on_main([this, ok = r.ok(), message = r.status.message] {
          if (left_ || stopped_) return;
          if (ok) {
            spdlog::info("fleet: registered {} (generation {})", key_, generation_);
            return;
          }
          spdlog::warn("fleet: cannot write {}: {}; trying again in 1 s", key_, message);
          retryLater();
        });
      },
      lease_);
}

void Fleet::retryLater() {
  retry_.expires_after(std::chrono::seconds(1));
  retry_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_ || left_) return;
    if (lease_ == 0) {
      grant();
    } else {
      write();
    }
  });
}

json Fleet::list() const {
  json instances = json::array();
  for (const auto& [key, kv] : seen_.kvs) {
    json v = json::parse(kv.value, nullptr, /*allow_exceptions=*/false);
    if (!v.is_object()) v = {{"value", kv.value}};
    v["key"] = key;
    instances.push_back(std::move(v));
  }
  return {{"self", key_},
          {"registered", lease_ != 0 && seen_.kvs.contains(key_)},
          {"revision", seen_.revision},
          {"instances", std::move(instances)}};
}

}  // namespace sluice::gateway::server
