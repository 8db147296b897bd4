// A read-only YAML tree for the config loader: libyaml parses the text (about ten times faster
// than yaml-cpp's parser on a large config, which bounds how long a reload takes) into a flat
// tree, and Node reads it with the part of yaml-cpp's YAML::Node interface the loader uses.
// Internal to gateway/config.
//
// Where the loader depends on it, it behaves as yaml-cpp's YAML::Load does:
// - a plain, untagged "", "~", "null", "Null" or "NULL" is Null (not a Scalar); quoted or tagged,
//   it is a Scalar. Tags are otherwise ignored;
// - an alias (*a) is the node anchored &a, mark included; merge keys (<<) are ordinary keys;
// - of several documents, the first is read (what follows it is not parsed); an empty one is Null;
// - marks are 0-based, where the node's text (or its anchor or tag) starts: the first key of a
//   block map, the '-' of a block sequence, the '[' or '{' of a flow collection, the quote of a
//   quoted scalar;
// - duplicate keys are kept, in order; a lookup finds the first.
// Unlike yaml-cpp:
// - an empty value is marked right after its ':' or '-', on its key's line (yaml-cpp marks it
//   where the next token starts, often the next key);
// - a column counts characters, not bytes;
// - syntax errors are libyaml's: its messages, and it is stricter (invalid UTF-8, control
//   characters, unknown directives or tag handles, an unclosed quote at the end, "[a, , b]", a
//   block key left empty, "..." alone are errors);
// - an alias inside the node it names (a recursive structure) is an error;
// - collections nested deeper than kMaxDepth are an error (yaml-cpp stops at about 500 nested
//   block maps or 1000 flow sequences). Nothing here recurses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::gateway::config::yaml {

// Collections nested deeper than this are an error. A config needs fewer than 10 levels, and
// libyaml's scanner does work in proportion to the depth for every token: this also bounds the
// time a hostile file takes (250 KB nested 100 deep throughout: ~50 ms; 1000 deep: ~500 ms).
inline constexpr int kMaxDepth = 100;

// A position in the text, 0-based; -1 for a node that is not there.
struct Mark {
  int line = -1;
  int column = -1;
};

class Document;
class Iterator;

// A node of a parsed document: cheap to copy (it shares the document, which lives as long as any
// of its nodes). A default-constructed Node, a missing key and an index out of range are undefined
// (false); every accessor is safe on them. Methods are named as YAML::Node's, whose place it takes.
class Node {
 public:
  Node() = default;

  explicit operator bool() const { return doc_ != nullptr; }
  [[nodiscard]] bool IsNull() const;
  [[nodiscard]] bool IsScalar() const;
  [[nodiscard]] bool IsSequence() const;
  [[nodiscard]] bool IsMap() const;

  // The text of a scalar; "" for anything else (Null included).
  [[nodiscard]] const std::string& Scalar() const;
  [[nodiscard]] yaml::Mark Mark() const;

  // The value of the first key equal to `key` (a Scalar, not a Null), or an undefined node when
  // there is none or this is not a map.
  Node operator[](std::string_view key) const;
  // Element `index` of a sequence, or an undefined node.
  Node operator[](std::size_t index) const;

  // Elements of a sequence, pairs of a map, 0 otherwise.
  [[nodiscard]] std::size_t size() const;

  // A sequence iterates its elements (each an Item that is the element), a map its pairs (each an
  // Item whose .first and .second are the key and the value); anything else is empty.
  [[nodiscard]] Iterator begin() const;
  [[nodiscard]] Iterator end() const;

 private:
  friend class Document;
  friend class Iterator;
  Node(std::shared_ptr<const Document> doc, std::uint32_t index)
      : doc_(std::move(doc)), index_(index) {}

  std::shared_ptr<const Document> doc_;
  std::uint32_t index_ = 0;
};

// What iterating a node yields: a sequence's element (the Item itself), or a map's pair.
struct Item : Node {
  Node first;
  Node second;
};

class Iterator {
 public:
  using iterator_category = std::input_iterator_tag;  // it yields values, not references
  using value_type = Item;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = Item;

  Iterator() = default;
  Item operator*() const;
  Iterator& operator++() {
    ++position_;
    return *this;
  }
  Iterator operator++(int) {
    Iterator before = *this;
    ++position_;
    return before;
  }
  friend bool operator==(const Iterator& a, const Iterator& b) {
    return a.position_ == b.position_;  // iterators of one node's range
  }

 private:
  friend class Node;
  Iterator(Node owner, std::size_t position) : owner_(std::move(owner)), position_(position) {}

  Node owner_;
  std::size_t position_ = 0;
};

// A syntax error, 0-based like Mark.
struct Error {
  int line = 0;
  int column = 0;
  std::string message;  // libyaml's problem, then its context: "did not find expected ',' ..."
};

struct Parsed {
  Node root;                   // undefined when there is an error
  std::optional<Error> error;  // set when the text is not YAML
};

// Parses the first document of `text` (UTF-8, or UTF-16 with a BOM).
Parsed parse(std::string_view text);

}  // namespace sluice::gateway::config::yaml
