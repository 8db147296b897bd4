#include "gateway/config/yaml_tree.h"

#include <algorithm>
#include <climits>
#include <unordered_map>
#include <utility>
#include <vector>
#include <yaml.h>

namespace sluice::gateway::config::yaml {

// The tree: nodes in the order their text starts, each collection's children in one array.
// Immutable once parsed; shared by its nodes.
class Document {
 public:
  enum class Kind : std::uint8_t { Null, Scalar, Sequence, Map };

  struct Entry {
    Kind kind = Kind::Null;
    bool open = false;  // a collection still being parsed (an alias to it would be recursive)
    yaml::Mark mark;
    std::uint32_t first = 0;  // into children
    std::uint32_t count = 0;  // elements of a sequence, pairs of a map (keys and values alternate)
    std::string scalar;       // a Scalar's text; "" for anything else
  };

  std::vector<Entry> entries;
  std::vector<std::uint32_t> children;

  static Node node(const std::shared_ptr<const Document>& doc, std::uint32_t index) {
    return {doc, index};
  }
};

namespace {

using Kind = Document::Kind;

const std::string empty_text;

bool isNullText(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

int clampInt(std::size_t v) { return v > INT_MAX ? INT_MAX : static_cast<int>(v); }

Mark markOf(const yaml_mark_t& m) { return {clampInt(m.line), clampInt(m.column)}; }

// The line and column (in characters, as libyaml counts them) of byte `offset` of UTF-8 `text`.
Mark markAtOffset(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  Mark m{0, 0};
  const std::size_t start = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;  // a BOM is no column
  for (std::size_t i = start; i < offset; ++i) {
    const char c = text[i];
    if (c == '\n' || (c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))) {
      ++m.line;
      m.column = 0;
    } else if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) {  // not a continuation byte
      ++m.column;
    }
  }
  return m;
}

// "0A", "FEFF": the byte or the character a reader error is about.
std::string hex(unsigned v) {
  constexpr std::string_view kDigits = "0123456789ABCDEF";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[v % 16]);
    v /= 16;
  } while (v != 0 || out.size() < 2);
  return out;
}

std::string at(const yaml_mark_t& m) {
  return "line " + std::to_string(m.line + 1) + ", column " + std::to_string(m.column + 1);
}

Error syntaxError(const yaml_parser_t& p, std::string_view text) {
  Error e;
  if (p.error == YAML_MEMORY_ERROR) {
    e.message = "out of memory";
    return e;
  }
  e.message = p.problem != nullptr ? p.problem : "unknown problem";
  if (p.error == YAML_READER_ERROR) {  // bad encoding: libyaml knows the byte, not the position
    const Mark m = markAtOffset(text, p.problem_offset);
    e.line = m.line;
    e.column = m.column;
    if (p.problem_value != -1) {
      e.message += " (0x" + hex(static_cast<unsigned>(p.problem_value)) + ")";
    }
  } else {
    const Mark m = markOf(p.problem_mark);
    e.line = m.line;
    e.column = m.column;
  }
  if (p.context != nullptr) {  // "while parsing a flow sequence", and where that started
    const bool here = p.context_mark.line == p.problem_mark.line &&
                      p.context_mark.column == p.problem_mark.column;
    e.message +=
        " (" + std::string(p.context) + (here ? "" : " that starts at " + at(p.context_mark)) + ")";
  }
  return e;
}

struct ParserHandle {
  yaml_parser_t parser{};
  bool initialized = yaml_parser_initialize(&parser) != 0;
  ParserHandle() = default;
  ~ParserHandle() {
    if (initialized) yaml_parser_delete(&parser);
  }
  ParserHandle(const ParserHandle&) = delete;
  ParserHandle& operator=(const ParserHandle&) = delete;
  ParserHandle(ParserHandle&&) = delete;
  ParserHandle& operator=(ParserHandle&&) = delete;
};

struct EventHandle {
  yaml_event_t event{};
  EventHandle() = default;
  ~EventHandle() { yaml_event_delete(&event); }
  EventHandle(const EventHandle&) = delete;
  EventHandle& operator=(const EventHandle&) = delete;
  EventHandle(EventHandle&&) = delete;
  EventHandle& operator=(EventHandle&&) = delete;
};

std::string_view text(const yaml_char_t* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

// Builds the tree from libyaml's events, without recursion: the collections being parsed are a
// stack, and the children they have so far wait in `pending_` until their collection ends.
class Builder {
 public:
  explicit Builder(std::shared_ptr<Document> doc) : doc_(std::move(doc)) {}

  // False with `error` set when the event cannot be added.
  bool add(const yaml_event_t& ev, Error& error) {
    switch (ev.type) {
      case YAML_SCALAR_EVENT: {
        const auto& s = ev.data.scalar;
        const std::string_view value(reinterpret_cast<const char*>(s.value), s.length);
        // As yaml-cpp: only an untagged plain scalar can be null.
        const bool null =
            s.style == YAML_PLAIN_SCALAR_STYLE && s.tag == nullptr && isNullText(value);
        const auto index = push(null ? Kind::Null : Kind::Scalar, ev.start_mark, s.anchor);
        if (!null) doc_->entries[index].scalar = value;
        attach(index);
        return true;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        if (open_.size() >= static_cast<std::size_t>(kMaxDepth)) {
          error = {clampInt(ev.start_mark.line), clampInt(ev.start_mark.column),
                   "collections nested more than " + std::to_string(kMaxDepth) + " deep"};
          return false;
        }
        const bool seq = ev.type == YAML_SEQUENCE_START_EVENT;
        const auto index = push(seq ? Kind::Sequence : Kind::Map, ev.start_mark,
                                seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor);
        doc_->entries[index].open = true;
        open_.push_back({index, pending_.size()});
        return true;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        const Open o = open_.back();
        open_.pop_back();
        auto& e = doc_->entries[o.index];
        const std::size_t n = pending_.size() - o.pending_start;
        e.open = false;
        e.first = static_cast<std::uint32_t>(doc_->children.size());
        e.count = static_cast<std::uint32_t>(e.kind == Kind::Map ? n / 2 : n);
        doc_->children.insert(doc_->children.end(),
                              pending_.begin() + static_cast<std::ptrdiff_t>(o.pending_start),
                              pending_.end());
        pending_.resize(o.pending_start);
        attach(o.index);
        return true;
      }
      case YAML_ALIAS_EVENT: {
        const std::string name(text(ev.data.alias.anchor));
        const auto it = anchors_.find(name);
        const Mark m = markOf(ev.start_mark);
        if (it == anchors_.end()) {
          error = {m.line, m.column, "alias *" + name + " has no anchor &" + name + " before it"};
          return false;
        }
        if (doc_->entries[it->second].open) {
          error = {m.line, m.column,
                   "alias *" + name + " is inside the node it refers to (a recursive structure)"};
          return false;
        }
        attach(it->second);
        return true;
      }
      default:
        return true;
    }
  }

  // The root: the document's node, or a Null when the document (or the stream) is empty.
  std::uint32_t root() {
    if (!root_) root_ = push(Kind::Null, yaml_mark_t{}, nullptr);
    return *root_;
  }

 private:
  struct Open {
    std::uint32_t index;
    std::size_t pending_start;
  };

  std::uint32_t push(Kind kind, const yaml_mark_t& mark, const yaml_char_t* anchor) {
    const auto index = static_cast<std::uint32_t>(doc_->entries.size());
    auto& e = doc_->entries.emplace_back();
    e.kind = kind;
    e.mark = markOf(mark);
    if (anchor != nullptr) anchors_[std::string(text(anchor))] = index;
    return index;
  }

  void attach(std::uint32_t index) {
    if (open_.empty()) {
      root_ = index;
    } else {
      pending_.push_back(index);
    }
  }

  std::shared_ptr<Document> doc_;
  std::vector<Open> open_;
  std::vector<std::uint32_t> pending_;
  std::unordered_map<std::string, std::uint32_t> anchors_;
  std::optional<std::uint32_t> root_;
};

}  // namespace

bool Node::IsNull() const { return doc_ && doc_->entries[index_].kind == Kind::Null; }
bool Node::IsScalar() const { return doc_ && doc_->entries[index_].kind == Kind::Scalar; }
bool Node::IsSequence() const { return doc_ && doc_->entries[index_].kind == Kind::Sequence; }
bool Node::IsMap() const { return doc_ && doc_->entries[index_].kind == Kind::Map; }

const std::string& Node::Scalar() const { return doc_ ? doc_->entries[index_].scalar : empty_text; }

Mark Node::Mark() const { return doc_ ? doc_->entries[index_].mark : yaml::Mark{}; }

Node Node::operator[](std::string_view key) const {
  if (!IsMap()) return {};
  const auto& e = doc_->entries[index_];
  for (std::uint32_t i = 0; i < e.count; ++i) {
    const auto k = doc_->children[e.first + 2 * i];
    const auto& ke = doc_->entries[k];
    if (ke.kind == Kind::Scalar && ke.scalar == key) {
      return {doc_, doc_->children[e.first + 2 * i + 1]};
    }
  }
  return {};
}

Node Node::operator[](std::size_t index) const {
  if (!IsSequence() || index >= doc_->entries[index_].count) return {};
  return {doc_, doc_->children[doc_->entries[index_].first + index]};
}

std::size_t Node::size() const {
  if (!IsSequence() && !IsMap()) return 0;
  return doc_->entries[index_].count;
}

Iterator Node::begin() const { return {*this, 0}; }
Iterator Node::end() const { return {*this, size()}; }

Item Iterator::operator*() const {
  Item item;
  const auto& doc = owner_.doc_;
  const auto& e = doc->entries[owner_.index_];
  if (e.kind == Kind::Map) {
    item.first = Node(doc, doc->children[e.first + 2 * position_]);
    item.second = Node(doc, doc->children[e.first + 2 * position_ + 1]);
  } else {
    static_cast<Node&>(item) = Node(doc, doc->children[e.first + position_]);
  }
  return item;
}

Parsed parse(std::string_view text) {
  Parsed out;
  ParserHandle handle;
  if (!handle.initialized) {
    out.error = Error{0, 0, "out of memory"};
    return out;
  }
  yaml_parser_t& p = handle.parser;
  yaml_parser_set_input_string(&p, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  auto doc = std::make_shared<Document>();
  Builder builder(doc);
  for (bool done = false; !done;) {
    EventHandle ev;
    if (yaml_parser_parse(&p, &ev.event) == 0) {
      out.error = syntaxError(p, text);
      return out;
    }
    // The first document only, as yaml-cpp's Load: what follows it is not read.
    done = ev.event.type == YAML_DOCUMENT_END_EVENT || ev.event.type == YAML_STREAM_END_EVENT;
    Error error;
    if (!builder.add(ev.event, error)) {
      out.error = std::move(error);
      return out;
    }
  }
  const auto root = builder.root();
  out.root = Document::node(doc, root);
  return out;
}

}  // namespace sluice::gateway::config::yaml
