#include "gateway/config/yaml_tree.h"

#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::gateway::config::yaml {
namespace {

using ::testing::HasSubstr;

Node rootOf(std::string_view text) {
  auto p = parse(text);
  EXPECT_FALSE(p.error) << text << ": " << (p.error ? p.error->message : "");
  return p.root;
}

Error errorOf(std::string_view text) {
  auto p = parse(text);
  EXPECT_TRUE(p.error) << text;
  EXPECT_FALSE(p.root);
  return p.error.value_or(Error{-1, -1, ""});
}

std::pair<int, int> at(const Node& n) { return {n.Mark().line, n.Mark().column}; }

TEST(YamlTree, TypesAreExclusive) {
  const Node root = rootOf("map: { a: 1 }\nseq: [1]\nscalar: x\nnothing: ~\n");
  ASSERT_TRUE(root.IsMap());
  const auto kinds = [](const Node& n) {
    return std::vector<bool>{n.IsMap(), n.IsSequence(), n.IsScalar(), n.IsNull()};
  };
  EXPECT_EQ(kinds(root["map"]), (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(kinds(root["seq"]), (std::vector<bool>{false, true, false, false}));
  EXPECT_EQ(kinds(root["scalar"]), (std::vector<bool>{false, false, true, false}));
  EXPECT_EQ(kinds(root["nothing"]), (std::vector<bool>{false, false, false, true}));
  EXPECT_EQ(kinds(root["absent"]), (std::vector<bool>{false, false, false, false}));
  EXPECT_EQ(root["scalar"].Scalar(), "x");
  EXPECT_EQ(root["map"].Scalar(), "");
  EXPECT_EQ(root["seq"].Scalar(), "");
}

TEST(YamlTree, PlainUntaggedNullWordsAreNull) {
  const Node root = rootOf(
      "empty:\ntilde: ~\nlower: null\ntitle: Null\nupper: NULL\n"
      "mixed: nUll\nsingle: 'null'\ndouble: \"~\"\nquoted_empty: ''\ntagged: !!str null\n"
      "tagged_empty: !!str\nother_tag: !x NULL\n");
  for (const char* key : {"empty", "tilde", "lower", "title", "upper"}) {
    EXPECT_TRUE(root[key]) << key;
    EXPECT_TRUE(root[key].IsNull()) << key;
    EXPECT_FALSE(root[key].IsScalar()) << key;
    EXPECT_EQ(root[key].Scalar(), "") << key;  // as yaml-cpp: a Null has no text
  }
  const std::vector<std::pair<const char*, const char*>> scalars = {
      {"mixed", "nUll"},  {"single", "null"},   {"double", "~"},      {"quoted_empty", ""},
      {"tagged", "null"}, {"tagged_empty", ""}, {"other_tag", "NULL"}};
  for (const auto& [key, text] : scalars) {
    EXPECT_TRUE(root[key].IsScalar()) << key;
    EXPECT_EQ(root[key].Scalar(), text) << key;
  }
}

TEST(YamlTree, ScalarsAreTheirTextWhateverTheStyle) {
  const Node root = rootOf(
      "plain: a b  c\nsingle: 'it''s'\ndouble: \"tab\\there\\n\"\n"
      "literal: |\n  one\n  two\nfolded: >\n  one\n  two\nnumber: 010\nbool: yes\n"
      "multi: first\n  second\n");
  EXPECT_EQ(root["plain"].Scalar(), "a b  c");
  EXPECT_EQ(root["single"].Scalar(), "it's");
  EXPECT_EQ(root["double"].Scalar(), "tab\there\n");
  EXPECT_EQ(root["literal"].Scalar(), "one\ntwo\n");
  EXPECT_EQ(root["folded"].Scalar(), "one two\n");
  EXPECT_EQ(root["number"].Scalar(), "010");  // no resolution: the loader reads the text
  EXPECT_EQ(root["bool"].Scalar(), "yes");
  EXPECT_EQ(root["multi"].Scalar(), "first second");
}

// Where yaml-cpp puts them, so that diagnostics keep their line:column.
TEST(YamlTree, MarksAreWhereTheNodeStarts) {
  const Node root = rootOf(
      "block:\n"                      // 0
      "  key: value\n"                // 1
      "  'quoted': \"double\"\n"      // 2
      "flow: { a: [x, y], b: {} }\n"  // 3
      "seq:\n"                        // 4
      "  - one\n"                     // 5
      "  - k: v\n"                    // 6
      "indentless:\n"                 // 7
      "- i\n"                         // 8
      "anchored: &a\n"                // 9
      "  z: 1\n");                    // 10
  EXPECT_EQ(at(root), std::make_pair(0, 0));
  const Node block = root["block"];
  EXPECT_EQ(at(block), std::make_pair(1, 2));  // a block map: its first key
  std::vector<std::pair<int, int>> keys;
  std::vector<std::pair<int, int>> values;
  for (const auto& kv : block) {
    keys.push_back(at(kv.first));
    values.push_back(at(kv.second));
  }
  EXPECT_EQ(keys, (std::vector<std::pair<int, int>>{{1, 2}, {2, 2}}));
  EXPECT_EQ(values, (std::vector<std::pair<int, int>>{{1, 7}, {2, 12}}));  // quotes included
  EXPECT_EQ(at(root["flow"]), std::make_pair(3, 6));                       // the '{'
  EXPECT_EQ(at(root["flow"]["a"]), std::make_pair(3, 11));                 // the '['
  EXPECT_EQ(at(root["flow"]["a"][1]), std::make_pair(3, 15));
  EXPECT_EQ(at(root["flow"]["b"]), std::make_pair(3, 22));
  EXPECT_EQ(at(root["seq"]), std::make_pair(5, 2));  // a block sequence: its first '-'
  EXPECT_EQ(at(root["seq"][0]), std::make_pair(5, 4));
  EXPECT_EQ(at(root["seq"][1]), std::make_pair(6, 4));
  EXPECT_EQ(at(root["seq"][1]["k"]), std::make_pair(6, 7));
  EXPECT_EQ(at(root["indentless"]), std::make_pair(8, 0));
  EXPECT_EQ(at(root["anchored"]), std::make_pair(9, 10));  // its anchor
}

// yaml-cpp marks an empty value where the next token starts (often the next line's key);
// libyaml, right after the ':' or '-': on the line the value is missing from.
TEST(YamlTree, EmptyValuesAreMarkedAfterTheirIndicator) {
  const Node root = rootOf("a:\nb: 1\nc:\n- \n");
  EXPECT_EQ(at(root["a"]), std::make_pair(0, 2));
  EXPECT_EQ(at(root["c"][0]), std::make_pair(3, 1));
}

TEST(YamlTree, ColumnsCountCharacters) {
  const Node root = rootOf("é: [日本, x]\n");
  EXPECT_EQ(at(root["é"]), std::make_pair(0, 3));
  EXPECT_EQ(at(root["é"][1]), std::make_pair(0, 8));
}

TEST(YamlTree, AliasesAreTheAnchoredNode) {
  const Node root = rootOf(
      "base: &b { x: 1 }\nuse: *b\nlist: [&s text, *s]\n"
      "merged:\n  <<: *b\n  y: 2\n");
  ASSERT_TRUE(root["use"].IsMap());
  EXPECT_EQ(root["use"]["x"].Scalar(), "1");
  EXPECT_EQ(at(root["use"]), at(root["base"]));  // as yaml-cpp: the mark of the anchored node
  EXPECT_EQ(root["list"][1].Scalar(), "text");
  EXPECT_EQ(at(root["list"][1]), std::make_pair(2, 7));
  // Merge keys are not special (neither are they to yaml-cpp): "<<" is a key like any other.
  EXPECT_FALSE(root["merged"]["x"]);
  EXPECT_TRUE(root["merged"]["<<"].IsMap());
  EXPECT_EQ(root["merged"].size(), 2U);
}

TEST(YamlTree, AnAliasNeedsAnAnchorBeforeIt) {
  const Error e = errorOf("a: *nope\nb: &nope 1\n");
  EXPECT_EQ(std::make_pair(e.line, e.column), std::make_pair(0, 3));
  EXPECT_THAT(e.message, HasSubstr("alias *nope has no anchor"));
}

TEST(YamlTree, RecursiveAliasesAreErrors) {
  const Error e = errorOf("a: &r\n  b: [*r]\n");
  EXPECT_EQ(std::make_pair(e.line, e.column), std::make_pair(1, 6));
  EXPECT_THAT(e.message, HasSubstr("recursive"));
}

TEST(YamlTree, LookupFindsTheFirstOfDuplicateKeys) {
  const Node root = rootOf("a: 1\nb: 2\na: 3\n");
  EXPECT_EQ(root["a"].Scalar(), "1");
  EXPECT_EQ(root.size(), 3U);  // duplicates are kept, for the reader to report
  std::vector<std::string> keys;
  for (const auto& kv : root) keys.push_back(kv.first.Scalar() + "=" + kv.second.Scalar());
  EXPECT_EQ(keys, (std::vector<std::string>{"a=1", "b=2", "a=3"}));
}

TEST(YamlTree, OnlyScalarKeysMatch) {
  // As yaml-cpp: a Null key is not the string "null"; a quoted one is.
  const Node root = rootOf("null: a\n'~': b\n[k]: c\n");
  EXPECT_FALSE(root["null"]);
  EXPECT_FALSE(root[""]);
  EXPECT_EQ(root["~"].Scalar(), "b");
  EXPECT_EQ(root.size(), 3U);
}

TEST(YamlTree, IteratesInDocumentOrder) {
  const Node root = rootOf("z: 1\ny: [c, b, a]\nx: {q: 1, p: 2}\n");
  std::vector<std::string> keys;
  for (const auto& kv : root) keys.push_back(kv.first.Scalar());
  EXPECT_EQ(keys, (std::vector<std::string>{"z", "y", "x"}));
  std::vector<std::string> items;
  for (const auto& item : root["y"]) {
    EXPECT_FALSE(item.first);  // a sequence's item is the element itself
    items.push_back(item.Scalar());
  }
  EXPECT_EQ(items, (std::vector<std::string>{"c", "b", "a"}));
  EXPECT_EQ(root["y"].size(), 3U);
  std::vector<std::string> inner;
  for (const auto& kv : root["x"]) inner.push_back(kv.first.Scalar() + kv.second.Scalar());
  EXPECT_EQ(inner, (std::vector<std::string>{"q1", "p2"}));
}

TEST(YamlTree, WrongShapesAndAbsentNodesAreUndefined) {
  const Node root = rootOf("s: text\nl: [a]\nm: {k: v}\n");
  EXPECT_FALSE(root["s"]["k"]);  // not a map (yaml-cpp would throw)
  EXPECT_FALSE(root["l"]["k"]);
  EXPECT_FALSE(root["m"][0]);  // not a sequence
  EXPECT_FALSE(root["l"][1]);  // out of range
  EXPECT_TRUE(root["l"][0]);
  EXPECT_EQ(root["s"].size(), 0U);
  EXPECT_EQ(root["s"].begin(), root["s"].end());
  const Node absent = root["nope"]["deeper"][3];
  EXPECT_FALSE(absent);
  EXPECT_EQ(absent.Scalar(), "");
  EXPECT_EQ(at(absent), std::make_pair(-1, -1));  // a diagnostic there has no position
  EXPECT_EQ(absent.size(), 0U);
  EXPECT_EQ(absent.begin(), absent.end());
  EXPECT_FALSE(Node());
}

TEST(YamlTree, NodesKeepTheirDocumentAlive) {
  Node child;
  {
    auto parsed = parse("a: { b: [x, y] }\n");
    child = parsed.root["a"]["b"];
  }
  std::vector<Node> items;
  for (const auto& item : child) items.push_back(item);
  ASSERT_EQ(items.size(), 2U);
  EXPECT_EQ(items[1].Scalar(), "y");
}

TEST(YamlTree, EmptyDocumentsAreNull) {
  for (const char* text : {"", "\n", "# only a comment\n", "---\n", "--- ~\n"}) {
    const Node root = rootOf(text);
    EXPECT_TRUE(root) << text;
    EXPECT_TRUE(root.IsNull()) << text;
  }
}

TEST(YamlTree, OnlyTheFirstDocumentIsRead) {
  const Node root = rootOf("a: 1\n---\nb: [unclosed\n");
  EXPECT_EQ(root["a"].Scalar(), "1");
  EXPECT_FALSE(root["b"]);
}

TEST(YamlTree, SyntaxErrorsSayWhatAndWhere) {
  struct Case {
    const char* text;
    int line;
    int column;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"listeners: [\n", 1, 0, "did not find expected node content"},
      {"a: 1\nb: [1, 2\nc: 3\n", 2, 1, "did not find expected ',' or ']'"},
      {"a: { b: 1\n", 1, 0, "(while parsing a flow mapping that starts at line 1, column 4)"},
      {"a: b: c\n", 0, 4, "mapping values are not allowed in this context"},
      {"a: 1\n b: 2\n", 1, 2, "mapping values are not allowed"},
      {"a:\n  - b\n - c\n", 2, 1, "did not find expected key"},
      {"a: 'open\n", 1, 0, "found unexpected end of stream"},
      {"a: \"\\q\"\n", 0, 4, "found unknown escape character"},
      {"a: @b\n", 0, 3, "found character that cannot start any token"},
      {"a:\n\tb: 1\n", 1, 0, "found character that cannot start any token"},
      {"ok: é\nbad: \xff\n", 1, 5, "invalid leading UTF-8 octet (0xFF)"},
      {"a: \x01\n", 0, 3, "control characters are not allowed (0x01)"},
  };
  for (const auto& c : cases) {
    const Error e = errorOf(c.text);
    EXPECT_EQ(std::make_pair(e.line, e.column), std::make_pair(c.line, c.column)) << c.text;
    EXPECT_THAT(e.message, HasSubstr(c.message)) << c.text;
  }
}

TEST(YamlTree, DeepNestingIsAnErrorNotAStackOverflow) {
  const Error e = errorOf(std::string(100'000, '['));
  EXPECT_EQ(std::make_pair(e.line, e.column), std::make_pair(0, kMaxDepth));
  EXPECT_THAT(e.message, HasSubstr("nested more than"));
  std::string blocks;  // block maps, each a level deeper
  for (int i = 0; i <= kMaxDepth; ++i) {
    blocks += std::string(static_cast<std::size_t>(i), ' ') + "k:\n";
  }
  EXPECT_THAT(errorOf(blocks).message, HasSubstr("nested more than"));
  // As deep as allowed is fine.
  const std::string deepest = std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']');
  Node n = rootOf(deepest);
  int depth = 0;
  for (; n.IsSequence(); n = n[0]) ++depth;
  EXPECT_EQ(depth, kMaxDepth);
}

}  // namespace
}  // namespace sluice::gateway::config::yaml
