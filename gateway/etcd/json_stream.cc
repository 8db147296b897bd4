#include "gateway/etcd/json_stream.h"

namespace sluice::gateway::etcd {

void JsonStream::feed(std::string_view bytes) {
  if (!failed_) buffer_.append(bytes);
}

std::optional<std::string> JsonStream::next() {
  while (!failed_ && scan_ < buffer_.size()) {
    const char c = buffer_[scan_];
    if (depth_ == 0) {
      // Between objects: whitespace is a separator, '{' starts the next one.
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        ++scan_;
        continue;
      }
      if (c != '{') {
        failed_ = true;
        break;
      }
      begin_ = scan_;
      depth_ = 1;
      ++scan_;
      continue;
    }
    ++scan_;
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        std::string object = buffer_.substr(begin_, scan_ - begin_);
        // Drop what is consumed so the buffer holds at most one object and a bit.
        buffer_.erase(0, scan_);
        scan_ = 0;
        begin_ = 0;
        return object;
      }
    }
    if (scan_ - begin_ > max_object_) failed_ = true;
  }
  if (depth_ == 0) {
    // Only whitespace left: forget it.
    buffer_.erase(0, scan_);
    scan_ = 0;
  }
  if (failed_) buffer_.clear();
  return std::nullopt;
}

}  // namespace sluice::gateway::etcd
