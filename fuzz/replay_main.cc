// fuzz_replay <harness> <file or directory>...: runs one harness (fuzz_target.h) over inputs,
// as a libFuzzer binary would over a corpus, without libFuzzer (so in GCC builds and CI).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.h"

namespace sluice::fuzz {
namespace {

std::map<std::string, Harness>& harnesses() {
  static std::map<std::string, Harness> table;
  return table;
}

}  // namespace

bool registerHarness(const char* name, Harness harness) {
  harnesses().emplace(name, harness);
  return true;
}

}  // namespace sluice::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const auto& table = sluice::fuzz::harnesses();
  if (argc < 3 || !table.contains(argv[1])) {
    std::fprintf(stderr, "usage: %s <harness> <file|dir>...\nharnesses:", argv[0]);
    for (const auto& [name, harness] : table) std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  const auto harness = table.at(argv[1]);
  std::vector<fs::path> inputs;
  for (int i = 2; i < argc; ++i) {
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
    } else if (fs::is_regular_file(p)) {
      inputs.push_back(p);
    } else if (!fs::exists(p)) {
      continue;  // a harness with no regression inputs yet has no directory for them
    }
  }
  std::sort(inputs.begin(), inputs.end());
  for (const auto& p : inputs) {
    std::printf("%s\n", p.c_str());  // shown by ctest when this input fails
    std::fflush(stdout);
    std::ifstream in(p, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    harness(bytes);
  }
  std::printf("%s: %zu inputs replayed\n", argv[1], inputs.size());
  return inputs.empty() ? 1 : 0;
}
