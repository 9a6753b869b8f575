// planfence/detail/uri.hpp: store URIs as they may be printed, with every secret taken out.
//
// What it is for: a store URI can carry a secret (`rfc2136://...?tsig=hmac-sha256:NAME:SECRET`,
// `etcd://user:password@host/...`), and URIs end up in messages, events and errors that operators
// paste into tickets. Every message of the library and of planfence-ctl that names a store names
// it through `redact_uri`, never the URI as given.
//
// The rule is a whitelist, so that a parameter nobody thought of (or a misspelt one) is hidden
// rather than shown: the scheme, host, port and path are kept (etcds:// as etcd://); a userinfo keeps its user name
// only (`user:(redacted)@`), and a port that is not a number is hidden (a password whose '@' is
// missing); a query parameter keeps its value only when its name is one of
// `public_parameters` (paths to key files, fence modes, timeouts, transaction limits: nothing
// secret); one of `secret_parameters` keeps its name and hides its value (`tsig` also keeps a
// known algorithm name, `tsig=hmac-sha256:(redacted)`); any other parameter (a misspelt name may be a secret
// typed in the wrong place), a parameter without '=', and a fragment become "(redacted)" whole.
// Text without "://" is hidden whole (it may be a secret pasted into the wrong option). The
// function never fails; it is meant for any text, well-formed or not.
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace planfence {
inline namespace v1 {
namespace detail {

/// Query parameter names whose values are never secret.
inline constexpr std::array<std::string_view, 14> public_parameters = {
    "tsig-file", "fence", "timeout-ms", "attempts", "password-file", "password-env", "user", "ca-file",
    "cert-file", "key-file", "server-name", "mode", "max-txn-ops", "max-request-bytes"};

/// Query parameter names whose values are secret: the name is shown, the value hidden.
inline constexpr std::array<std::string_view, 3> secret_parameters = {"tsig", "password", "token"};

inline constexpr std::string_view redacted_text = "(redacted)";

/// TSIG algorithm names (RFC 8945) shown in front of a redacted `tsig=` value.
inline constexpr std::array<std::string_view, 6> tsig_algorithms = {
    "hmac-sha256", "hmac-sha1", "hmac-sha224", "hmac-sha384", "hmac-sha512", "hmac-md5"};

[[nodiscard]] inline std::string redact_query_pair(std::string_view pair) {
  const std::size_t eq = pair.find('=');
  if (eq == std::string_view::npos) return std::string(redacted_text);
  const std::string_view name = pair.substr(0, eq);
  const std::string_view value = pair.substr(eq + 1);
  for (std::string_view known : public_parameters) {
    if (name == known) return std::string(pair);
  }
  // A name on neither list may itself be a secret typed in the wrong place: hide the pair.
  if (std::find(secret_parameters.begin(), secret_parameters.end(), name) == secret_parameters.end()) {
    return std::string(redacted_text);
  }
  std::string out(name);
  out += '=';
  if (name == "tsig") {
    // ALG:NAME:SECRET: the algorithm helps an operator and is shown when it is one; the rest is
    // hidden whole, since fields given in the wrong order would put the secret anywhere.
    const std::size_t colon = value.find(':');
    const std::string_view algorithm = value.substr(0, colon);
    if (colon != std::string_view::npos &&
        std::find(tsig_algorithms.begin(), tsig_algorithms.end(), algorithm) != tsig_algorithms.end()) {
      out += algorithm;
      out += ':';
    }
  }
  out += redacted_text;
  return out;
}

/// `uri` with its secrets replaced by "(redacted)" (see the header comment).
[[nodiscard]] inline std::string redact_uri(std::string_view uri) {
  // Text without a scheme is no URI: it may be a secret pasted into the wrong option.
  if (!uri.empty() && uri.find("://") == std::string_view::npos) return std::string(redacted_text);
  std::string out;
  out.reserve(uri.size() + 16);
  std::string_view rest = uri;
  const std::size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::string_view query;
  bool has_query = false;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    has_query = true;
  }
  // The userinfo is whatever precedes the last '@' of the authority (before the first '/'), or,
  // when a password holds a raw '/' (pasted unencoded), of everything up to the last '@' after a
  // ':': a secret is never printed, at the cost of hiding a path with '@' in it after a ':'.
  const std::size_t scheme_end = rest.find("://");
  const std::size_t authority_begin = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  std::size_t authority_end = std::min(rest.find('/', authority_begin), rest.size());
  if (const std::size_t last_at = rest.rfind('@'); last_at != std::string_view::npos && last_at >= authority_end) {
    const std::size_t colon = rest.find(':', authority_begin);
    if (colon != std::string_view::npos && colon < last_at) authority_end = last_at + 1;
  }
  const std::string_view authority = rest.substr(authority_begin, authority_end - authority_begin);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    out += rest.substr(0, authority_begin);
    const std::size_t colon = userinfo.find(':');
    out += userinfo.substr(0, colon);
    if (colon != std::string_view::npos) {
      out += ':';
      out += redacted_text;
    }
    out += rest.substr(authority_begin + at);
  } else {
    // No '@': a port that is not a number may be a password whose '@' is missing
    // (`etcd://user:password/prefix`); hide it.
    out += rest.substr(0, authority_begin);
    std::string_view hosts = authority;
    for (bool first = true;; first = false) {
      const std::size_t comma = hosts.find(',');
      const std::string_view host = hosts.substr(0, comma);
      if (!first) out += ',';
      const std::size_t colon = host.rfind(':');
      const std::size_t bracket = host.rfind(']');
      const bool has_port = colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
      const std::string_view port = has_port ? host.substr(colon + 1) : std::string_view{};
      if (has_port && port.find_first_not_of("0123456789") != std::string_view::npos) {
        out += host.substr(0, colon + 1);
        out += redacted_text;
      } else {
        out += host;
      }
      if (comma == std::string_view::npos) break;
      hosts = hosts.substr(comma + 1);
    }
    out += rest.substr(authority_end);
  }
  if (has_query) {
    out += '?';
    bool first = true;
    while (true) {
      const std::size_t amp = query.find('&');
      if (!first) out += '&';
      first = false;
      out += redact_query_pair(query.substr(0, amp));
      if (amp == std::string_view::npos) break;
      query = query.substr(amp + 1);
    }
  }
  if (hash != std::string_view::npos) {
    out += '#';
    out += redacted_text;
  }
  return out;
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
