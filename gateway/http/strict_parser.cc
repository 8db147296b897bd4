#include "gateway/http/strict_parser.h"

#include <cstring>

#include "gateway/http/chunked.h"

namespace sluice::gateway::http {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool chunkLineStuck(std::string_view rest) noexcept {
  if (rest.starts_with("\r\n")) rest.remove_prefix(2);
  if (rest.find("\r\n") == std::string_view::npos) return false;
  for (const char c : rest) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
    if (c != '0') return true;
  }
  return false;
}

template <bool IsRequest>
std::size_t StrictParser<IsRequest>::findHeadEnd(std::string_view data) noexcept {
  // Every line feed is a candidate end; memchr jumps between them (a head has a few dozen at
  // most), which is cheaper than memmem's general search for the four bytes.
  const char* const begin = data.data();
  const char* const end = begin + data.size();
  const char* p = begin + (scanned_ > 3 ? scanned_ : 3);
  while (p < end) {
    p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (p == nullptr) break;
    if (p[-1] == '\r' && p[-2] == '\n' && p[-3] == '\r') {
      return static_cast<std::size_t>(p - begin) + 1;
    }
    ++p;
  }
  scanned_ = data.size();
  return std::string_view::npos;
}

template <bool IsRequest>
bool StrictParser<IsRequest>::checkField(Field id, std::string_view name, std::string_view value,
                                         MessageHead& head, error_code& ec) {
  if (++fields_seen_ > max_fields_) return fail(FieldProblem::TooManyFields, ec);

  // Beast unfolds obs-fold into a private buffer, so a folded value does not point into our
  // input; a fold right after the colon leaves a line break between name and value instead.
  const char* after_name = name.data() + name.size();
  if (value.data() < input_begin_ || value.data() > input_end_) {
    return fail(FieldProblem::ObsFold, ec);
  }
  if (value.data() > after_name &&
      std::memchr(after_name, '\n', static_cast<std::size_t>(value.data() - after_name)) !=
          nullptr) {
    return fail(FieldProblem::ObsFold, ec);
  }

  switch (id) {
    case Field::content_length:
      // Beast accepts repeated equal values ("5, 5"); a strict intermediary does not have to,
      // and passing such a message on is how length-confusion attacks start.
      if (saw_content_length_ || value.find(',') != std::string_view::npos) {
        return fail(FieldProblem::BadContentLength, ec);
      }
      saw_content_length_ = true;
      break;
    case Field::transfer_encoding: {
      if (saw_transfer_encoding_ || head.version < 11) {
        return fail(FieldProblem::BadTransferEncoding, ec);
      }
      saw_transfer_encoding_ = true;
      std::array<std::string_view, 2> last{};  // last two codings seen
      std::size_t n = 0;
      forEachListElement(value, [&](std::string_view coding) {
        last[0] = last[1];
        last[1] = coding;
        ++n;
      });
      if (n == 0 || !iequals(last[1], "chunked")) {
        return fail(FieldProblem::BadTransferEncoding, ec);
      }
      if (n > 1) {
        // "chunked, chunked" is malformed; "gzip, chunked" is legal but not something we decode.
        return fail(iequals(last[0], "chunked") ? FieldProblem::BadTransferEncoding
                                                : FieldProblem::UnsupportedCoding,
                    ec);
      }
      break;
    }
    case Field::connection:
      forEachListElement(value,
                         [&](std::string_view token) { head.connection_tokens.push_back(token); });
      break;
    default:
      break;
  }
  return true;
}

template <bool IsRequest>
std::size_t StrictParser<IsRequest>::on_body_impl(boost::beast::string_view body,
                                                  error_code& /*ec*/) {
  decoded_ += body.size();
  if (out_ != nullptr) out_->append(body.data(), body.size());
  return body.size();
}

template <bool IsRequest>
std::size_t StrictParser<IsRequest>::on_chunk_body_impl(std::uint64_t /*remain*/,
                                                        boost::beast::string_view body,
                                                        error_code& /*ec*/) {
  decoded_ += body.size();
  if (out_ == nullptr || body.empty()) return body.size();
  if (rechunk_) {
    // Each decoded piece becomes one chunk: sizes and extensions are ours, never the sender's.
    appendChunkHeader(*out_, body.size());
    out_->append(body.data(), body.size());
    out_->append(kCrLf);
  } else {
    out_->append(body.data(), body.size());
  }
  return body.size();
}

template <bool IsRequest>
void StrictParser<IsRequest>::on_finish_impl(error_code& /*ec*/) {
  // Trailer fields are dropped (they are parsed, and checked, as fields by Beast).
  if (out_ != nullptr && rechunk_ && this->chunked()) out_->append(kLastChunk);
}

template class StrictParser<true>;
template class StrictParser<false>;

}  // namespace sluice::gateway::http
