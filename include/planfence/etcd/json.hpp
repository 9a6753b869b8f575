// planfence/etcd/json.hpp: a bounded JSON reader and writer for the etcd gateway (base64 is in
// detail/base64.hpp).
//
// What it is: the small part of JSON (RFC 8259) that etcd's v3 JSON gateway speaks, read into a
// tree by a parser of our own so that the runtime needs nothing but the standard library. The
// reader accepts all of RFC 8259 (objects, arrays, strings with every escape, numbers kept as
// their text, true, false, null) and refuses, with errc::parse_error and the line and column,
// anything else: trailing commas, comments, lone surrogates, control characters in strings,
// leading zeros, text after the value, and input past any bound in `json_limits`. Numbers are
// kept as text because etcd sends every int64 as a string anyway, and a double would lose
// revisions above 2^53.
//
//     auto doc = planfence::detail::json_parse(R"({"kvs":[{"key":"Zm9v","mod_revision":"7"}]})");
//     const auto* kv = doc->find("kvs")->at(0);
//     std::int64_t rev = kv->int64_of("mod_revision").value();     // 7; a missing field is 0
//     std::string key = planfence::detail::base64_decode(kv->string_of("key")).value();
//
// When not to use it: for documents of more than a few MiB, or for anything needing full Unicode
// validation of every byte outside escapes (bytes >= 0x80 are passed through unchecked).
//
// Cost: one pass, recursion bounded by depth_max; allocates the tree (about 80 bytes a value plus
// the strings). Fuzzed by tests/fuzz/etcd_response_fuzz.cpp.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../result.hpp"
#include "../detail/base64.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

/// Bounds on what json_parse accepts. Every one is checked before it could be exceeded.
struct json_limits {
  std::size_t input_bytes_max = std::size_t{16} << 20;  ///< the whole document
  std::size_t depth_max = 32;                           ///< nested arrays and objects
  std::size_t values_max = std::size_t{1} << 20;        ///< values in the document
};

/// One JSON value. Objects keep their members in document order; duplicate names are kept and
/// `find` returns the first.
class json_value {
 public:
  enum class kind : std::uint8_t { null, boolean, number, string, array, object };

  [[nodiscard]] kind type() const noexcept { return kind_; }
  [[nodiscard]] bool is_object() const noexcept { return kind_ == kind::object; }
  [[nodiscard]] bool is_array() const noexcept { return kind_ == kind::array; }
  [[nodiscard]] bool is_string() const noexcept { return kind_ == kind::string; }
  [[nodiscard]] bool boolean() const noexcept { return kind_ == kind::boolean && boolean_; }
  /// A string's decoded content or a number's text; empty for other kinds.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] const std::vector<json_value>& items() const noexcept { return items_; }
  [[nodiscard]] const std::vector<std::pair<std::string, json_value>>& members() const noexcept { return members_; }

  /// The member called `name`, or nullptr (also when this is not an object).
  [[nodiscard]] const json_value* find(std::string_view name) const noexcept {
    for (const auto& [key, value] : members_) {
      if (key == name) return &value;
    }
    return nullptr;
  }
  /// The `index`th item, or nullptr.
  [[nodiscard]] const json_value* at(std::size_t index) const noexcept {
    return index < items_.size() ? &items_[index] : nullptr;
  }
  /// A string member's content; empty when missing (the gateway omits empty values).
  [[nodiscard]] std::string_view string_of(std::string_view name) const noexcept {
    const json_value* v = find(name);
    return v != nullptr && v->kind_ == kind::string ? std::string_view(v->text_) : std::string_view{};
  }
  /// A boolean member; false when missing (the gateway omits false).
  [[nodiscard]] bool bool_of(std::string_view name) const noexcept {
    const json_value* v = find(name);
    return v != nullptr && v->boolean();
  }
  /// An integer member sent as a string (int64, uint64) or as a number (int32); 0 when missing.
  /// Errors: errc::parse_error when present but not an integer that fits.
  [[nodiscard]] result<std::int64_t> int64_of(std::string_view name) const {
    const json_value* v = find(name);
    if (v == nullptr || v->kind_ == kind::null) return std::int64_t{0};
    if (v->kind_ != kind::string && v->kind_ != kind::number) {
      return fail(errc::parse_error, "field '" + std::string(name) + "' is not an integer");
    }
    const std::string& t = v->text_;
    std::int64_t out = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    if (t.empty() || ec != std::errc{} || end != t.data() + t.size()) {
      // Lease IDs are int64 in the API but some clients print them unsigned: accept that too.
      std::uint64_t unsigned_out = 0;
      const auto [uend, uec] = std::from_chars(t.data(), t.data() + t.size(), unsigned_out);
      if (t.empty() || uec != std::errc{} || uend != t.data() + t.size()) {
        return fail(errc::parse_error, "field '" + std::string(name) + "' is not an integer: '" + t.substr(0, 32) + "'");
      }
      out = static_cast<std::int64_t>(unsigned_out);
    }
    return out;
  }

 private:
  friend class json_parser;
  kind kind_ = kind::null;
  bool boolean_ = false;
  std::string text_;
  std::vector<json_value> items_;
  std::vector<std::pair<std::string, json_value>> members_;
};

/// The recursive-descent reader behind json_parse.
class json_parser {
 public:
  json_parser(std::string_view text, const json_limits& limits) noexcept : text_(text), limits_(limits) {}

  [[nodiscard]] result<json_value> parse() {
    if (text_.size() > limits_.input_bytes_max) return fail(errc::capacity_exceeded, "JSON document too large");
    json_value out;
    skip_space();
    if (auto r = parse_value(out, 0); !r) return unexpected_error(r.error());
    skip_space();
    if (pos_ != text_.size()) return error_here("unexpected text after the JSON value");
    return out;
  }

 private:
  unexpected_error error_here(const char* what) const {
    std::uint32_t line = 1;
    std::uint32_t column = 1;
    for (std::size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return fail_at(errc::parse_error, line, column, what);
  }
  void skip_space() noexcept {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool literal(std::string_view word) noexcept {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  result<void> parse_value(json_value& out, std::size_t depth) {
    if (++values_ > limits_.values_max) return fail(errc::capacity_exceeded, "too many JSON values");
    if (pos_ >= text_.size()) return error_here("unexpected end of JSON input: expected a value");
    const char c = text_[pos_];
    switch (c) {
      case '{': return parse_object(out, depth + 1);
      case '[': return parse_array(out, depth + 1);
      case '"': out.kind_ = json_value::kind::string; return parse_string(out.text_);
      case 't':
        if (!literal("true")) return error_here("expected 'true'");
        out.kind_ = json_value::kind::boolean;
        out.boolean_ = true;
        return ok();
      case 'f':
        if (!literal("false")) return error_here("expected 'false'");
        out.kind_ = json_value::kind::boolean;
        return ok();
      case 'n':
        if (!literal("null")) return error_here("expected 'null'");
        return ok();
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(out);
        return error_here("expected a JSON value");
    }
  }

  result<void> parse_object(json_value& out, std::size_t depth) {
    if (depth > limits_.depth_max) return error_here("JSON nested too deeply");
    out.kind_ = json_value::kind::object;
    ++pos_;  // '{'
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return ok();
    }
    for (;;) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') return error_here("expected a member name in quotes");
      std::string name;
      if (auto r = parse_string(name); !r) return r;
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != ':') return error_here("expected ':' after a member name");
      ++pos_;
      skip_space();
      out.members_.emplace_back(std::move(name), json_value{});
      if (auto r = parse_value(out.members_.back().second, depth); !r) return r;
      skip_space();
      if (pos_ >= text_.size()) return error_here("unexpected end of JSON input in an object");
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (text_[pos_] == '}') {
        ++pos_;
        return ok();
      }
      return error_here("expected ',' or '}' in an object");
    }
  }

  result<void> parse_array(json_value& out, std::size_t depth) {
    if (depth > limits_.depth_max) return error_here("JSON nested too deeply");
    out.kind_ = json_value::kind::array;
    ++pos_;  // '['
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return ok();
    }
    for (;;) {
      skip_space();
      out.items_.emplace_back();
      if (auto r = parse_value(out.items_.back(), depth); !r) return r;
      skip_space();
      if (pos_ >= text_.size()) return error_here("unexpected end of JSON input in an array");
      if (text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (text_[pos_] == ']') {
        ++pos_;
        return ok();
      }
      return error_here("expected ',' or ']' in an array");
    }
  }

  result<void> parse_number(json_value& out) {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (text_[pos_] == '-') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
      if (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') return error_here("leading zero in a number");
    } else if (digits() == 0) {
      return error_here("expected digits in a number");
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return error_here("expected digits after '.'");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) return error_here("expected digits in an exponent");
    }
    out.kind_ = json_value::kind::number;
    out.text_.assign(text_.substr(start, pos_ - start));
    return ok();
  }

  static void append_utf8(std::string& out, std::uint32_t code_point) {
    if (code_point < 0x80) {
      out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
      out += static_cast<char>(0xC0 | (code_point >> 6));
      out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
      out += static_cast<char>(0xE0 | (code_point >> 12));
      out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else {
      PLANFENCE_ASSERT(code_point <= 0x10FFFF);
      out += static_cast<char>(0xF0 | (code_point >> 18));
      out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
  }

  bool hex4(std::uint32_t& out) noexcept {
    if (text_.size() - pos_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      std::uint32_t digit = 0;
      if (c >= '0' && c <= '9') digit = static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') digit = static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') digit = static_cast<std::uint32_t>(c - 'A' + 10);
      else return false;
      out = out << 4 | digit;
    }
    return true;
  }

  result<void> parse_string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= text_.size()) return error_here("unterminated JSON string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return ok();
      }
      if (static_cast<unsigned char>(c) < 0x20) return error_here("control character in a JSON string");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= text_.size()) return error_here("unterminated escape in a JSON string");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t unit = 0;
          if (!hex4(unit)) return error_here("expected four hex digits after \\u");
          if (unit >= 0xDC00 && unit <= 0xDFFF) return error_here("lone low surrogate in a JSON string");
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            std::uint32_t low = 0;
            if (text_.substr(pos_, 2) != "\\u") return error_here("high surrogate without its low half");
            pos_ += 2;
            if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return error_here("high surrogate without its low half");
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, unit);
          break;
        }
        default: return error_here("unknown escape in a JSON string");
      }
    }
  }

  std::string_view text_;
  const json_limits& limits_;
  std::size_t pos_ = 0;
  std::size_t values_ = 0;
};

/// Parses one JSON document. Errors: errc::parse_error (with line and column),
/// errc::capacity_exceeded (a bound in `limits`).
[[nodiscard]] inline result<json_value> json_parse(std::string_view text, const json_limits& limits = {}) {
  return json_parser(text, limits).parse();
}

/// Appends `text` as a JSON string literal (quotes included), escaping what RFC 8259 requires.
inline void json_append_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
