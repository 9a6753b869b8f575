// planfence/etcd/client.hpp: a client for etcd's v3 JSON gateway (etcd 3.4).
//
// What it is: the handful of etcd v3 calls planfence needs, spoken as JSON over HTTP/1.1 to the
// gateway every etcd member serves on its client port: /v3/kv/range, /v3/kv/put, /v3/kv/txn,
// /v3/kv/deleterange, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke. The gateway's
// encoding (docs/etcd.md, checked against etcd 3.4.23): every `bytes` field is base64, every
// int64 is a JSON string, and fields with zero values are omitted (a missing `succeeded` is
// false, a missing `kvs` is empty, a missing `TTL` in a keep-alive answer is 0: the lease is
// gone). The JSON is read by etcd/json.hpp and the HTTP by etcd/http.hpp, so nothing but the
// standard library and POSIX is needed.
//
//     auto config = planfence::etcd::parse_endpoints("127.0.0.1:2379,127.0.0.1:22379").value();
//     planfence::etcd::client c{config};
//     auto put = c.put("/app/key", "value");                  // the new revision
//     auto got = c.range("/app/key");                          // got->kvs[0].value == "value"
//     auto t = c.txn({planfence::etcd::compare::mod_revision("/app/key", put.value())},
//                    {planfence::etcd::op::put("/app/key", "next")}, {planfence::etcd::op::range("/app/key")});
//
// Fail-over: the client keeps one kept-alive connection per member and talks to one member at
// a time. When a member cannot be reached (connect fails), or answers that it has no leader,
// the next member is tried, at most once each per call. A request whose bytes may have reached
// a member is retried on another only when it is idempotent (a range, a keep-alive); for a put,
// a delete or a transaction the outcome is unknown and the call fails with
// errc::store_unavailable ("outcome unknown"), leaving the decision to the caller, which in
// planfence always re-reads and decides again; the next call then starts at the next member, so
// a member that accepts connections but never answers (a paused process) cannot hold writes.
//
// Authentication (client_config::auth; URI: user=NAME&password-file=PATH or password-env=VAR):
// the client sends POST /v3/auth/authenticate {name, password} before its first request and
// then every request with the token in the `Authorization` header. A token etcd no longer takes
// ("invalid auth token": expired, --auth-token-ttl, or the member restarted; "revision of auth
// store is old"; "user name is empty": auth was enabled after the client started) is a refusal
// made before the request was applied, so the client authenticates again and sends the request
// once more, whatever the request: nothing is lost and nothing is applied twice. Any other
// failure keeps the fail-over rules below. A wrong password and a refused permission are
// errc::authentication_failed, naming the user and the key prefix (client_config::key_prefix),
// never the password or the token. A cluster without authentication enabled is used without a
// token (so credentials can be configured before `etcdctl auth enable`).
//
// TLS (client_config::tls, etcds:// URIs): etcd/tls.hpp, compiled only when the embedder
// defines PLANFENCE_ETCD_OPENSSL and links OpenSSL; otherwise refused with a message saying so.
//
// When not to use it: no watches (use polling); one request at a time per client (the calls
// take a mutex: give each thread that must not wait its own client).
//
// Cost: one HTTP round trip per call; a write waits for etcd's raft commit and fsync (about 1 ms
// for a transaction against a single local member, of which the client's own CPU is about 5 us:
// bench/etcd_bench.cpp, docs/etcd.md). Requests and responses are built and parsed as strings.
// Blocking (up to `request_timeout` per member); allocates.
//
// Errors: errc::store_unavailable (no member could be reached or answered in time, or the
// member reported an error), errc::not_found (a lease the server does not know),
// errc::parse_error (a response that is not what the gateway sends), errc::authentication_failed
// (wrong user or password, permission denied), errc::io_error (TLS asked for but not compiled
// in, or a CA, certificate or key file that cannot be used).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "http.hpp"
#include "json.hpp"
#include "tls.hpp"
#include "../detail/uri.hpp"
#include "../result.hpp"

namespace planfence {
inline namespace v1 {
namespace etcd {

/// One etcd member's client address.
struct member_address {
  std::string host;
  std::uint16_t port = 2379;
  friend bool operator==(const member_address&, const member_address&) = default;
};

/// An etcd user and its password. The password is sent to etcd only (over TLS when the client
/// uses it) and never appears in a message, an event or a log.
struct credentials {
  std::string user;
  std::string password;
};

/// How a client reaches the cluster.
struct client_config {
  std::vector<member_address> members;
  /// Deadline of one request to one member (connect, send and the whole response).
  std::chrono::milliseconds request_timeout{2000};
  detail::http_limits limits{};
  /// Authenticate as this user (etcd's `auth enable`); none: send no token.
  std::optional<credentials> auth;
  /// TLS to every member (etcd/tls.hpp).
  tls_options tls;
  /// The key prefix the client works under, for messages only (a refused permission names it).
  std::string key_prefix;
};

/// Bound on members in one configuration.
inline constexpr std::size_t members_max = 16;

/// Parses "HOST:PORT[,HOST:PORT...]" (IPv6 hosts in brackets: "[::1]:2379"). Errors:
/// errc::parse_error.
[[nodiscard]] inline result<client_config> parse_endpoints(std::string_view text) {
  client_config out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view one = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t colon = one.rfind(':');
    if (one.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == one.size()) {
      return fail(errc::parse_error, "expected HOST:PORT, got '" + std::string(one) + "'");
    }
    std::string host(one.substr(0, colon));
    if (host.front() == '[') {
      if (host.back() != ']') return fail(errc::parse_error, "unbalanced '[' in '" + std::string(one) + "'");
      host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
      return fail(errc::parse_error, "an IPv6 host goes in brackets: '[::1]:2379'");
    }
    const std::string_view port_text = one.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return fail(errc::parse_error, "bad port in '" + std::string(one) + "'");
    }
    if (out.members.size() >= members_max) return fail(errc::parse_error, "more than 16 members");
    out.members.push_back(member_address{std::move(host), static_cast<std::uint16_t>(port)});
  }
  if (out.members.empty()) return fail(errc::parse_error, "no etcd member given");
  return out;
}

/// What an `etcd://HOST:PORT[,HOST:PORT...]/PREFIX` URI names: the cluster and the key prefix
/// under which planfence keeps everything (docs/etcd.md gives the layout).
struct location {
  client_config config;
  std::string prefix;  ///< starts with '/', never ends with '/'
};

/// The query parameters parse_uri reads itself (the connection's): the rest belong to the caller.
inline constexpr std::array<std::string_view, 8> connection_parameters = {
    "user", "password-file", "password-env", "password", "ca-file", "cert-file", "key-file", "server-name"};

/// Whether `name` is one of connection_parameters.
[[nodiscard]] inline bool is_connection_parameter(std::string_view name) noexcept {
  return std::find(connection_parameters.begin(), connection_parameters.end(), name) != connection_parameters.end();
}

namespace uri_internal {

/// `text` with %XX escapes decoded; nullopt for a bad escape.
[[nodiscard]] inline std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc{} || end != text.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

}  // namespace uri_internal

/// The password in the file at `path`: its first line (a final CR dropped). The file must be a
/// regular file its group and others may not use (chmod 600), like rfc2136's TSIG key files.
/// Errors (errc::io_error, errc::parse_error) name the file, never its content.
[[nodiscard]] inline result<std::string> read_password_file(const std::string& path) {
  if (auto owner_only = check_owner_only(path, "password-file"); !owner_only) return unexpected_error(owner_only.error());
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int e = errno;
    return fail(errc::io_error, "cannot open password-file " + path + ": " + std::strerror(e));
  }
  detail::unique_fd file(fd);
  std::string text(secret_file_size_max + 1, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ::ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      return fail(errc::io_error, "cannot read password-file " + path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > secret_file_size_max) return fail(errc::io_error, "password-file " + path + " is too large");
  text.resize(got);
  if (const std::size_t newline = text.find('\n'); newline != std::string::npos) text.resize(newline);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) return fail(errc::parse_error, "password-file " + path + " is empty (the password goes on its first line)");
  return text;
}

/// Parses an etcd URI:
///
///     etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?PARAMETER&...]      plain HTTP
///     etcds://HOST:PORT[,HOST:PORT...]/PREFIX[?PARAMETER&...]     TLS (etcd/tls.hpp)
///
/// The prefix is required ("etcd://127.0.0.1:2379/planfence/prod"); a final '/' is dropped. The
/// connection's parameters (each at most once, values %-escaped where needed):
///   user=NAME with password-file=PATH (first line; the file owner-only) or password-env=VAR
///     (the environment variable holding the password): authenticate as NAME;
///   ca-file=PATH, cert-file=PATH, key-file=PATH (owner-only), server-name=NAME: TLS, etcds only.
/// A password is never taken from the URI itself: `password=...` and a `user:password@` before
/// the host are refused (a URI ends up in shell histories, process lists and tickets), as is a
/// `user@` (give user=NAME). `caller_parameters`: other names the caller reads itself (an etcd
/// store's fence, max-txn-ops and max-request-bytes); any other name is refused. The password
/// file or variable is read here. Every error names the URI through detail::redact_uri, never as
/// given, and never a value that could be a secret. Errors: errc::parse_error, errc::io_error (a
/// password file that cannot be read or that others may read; TLS not compiled in).
[[nodiscard]] inline result<location> parse_uri(std::string_view uri, std::span<const std::string_view> caller_parameters = {}) {
  const std::string_view given = uri;
  auto refuse = [given](std::string_view why, errc code = errc::parse_error) {
    return fail(code, std::string(why) + " (in " + detail::redact_uri(given) + ")");
  };
  constexpr std::string_view plain = "etcd://";
  constexpr std::string_view secure = "etcds://";
  const bool tls = uri.substr(0, secure.size()) == secure;
  if (!tls && uri.substr(0, plain.size()) != plain) return refuse("an etcd URI starts with etcd:// (or etcds:// for TLS)");
  uri.remove_prefix(tls ? secure.size() : plain.size());
  if (uri.find('#') != std::string_view::npos) return refuse("an etcd URI takes no fragment");
  std::string_view query;
  if (const std::size_t q = uri.find('?'); q != std::string_view::npos) {
    query = uri.substr(q + 1);
    uri = uri.substr(0, q);
  }
  const std::size_t slash = uri.find('/');
  if (uri.substr(0, slash).find('@') != std::string_view::npos) {
    return refuse("an etcd URI takes no user name or password before the host: give user=NAME with "
                  "password-file=PATH or password-env=VAR (docs/etcd.md)");
  }
  if (slash == std::string_view::npos) return refuse("an etcd URI needs a key prefix: etcd://HOST:PORT/PREFIX");
  auto config = parse_endpoints(uri.substr(0, slash));
  if (!config) return refuse(config.error().detail.view());
  std::string prefix(uri.substr(slash));
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  if (prefix.size() < 2) return refuse("an etcd URI needs a non-empty key prefix: etcd://HOST:PORT/PREFIX");
  if (prefix.size() > 512) return refuse("etcd key prefix longer than 512 bytes");
  for (const char c : prefix) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return refuse("control character or space in the etcd key prefix");
  }
  // The query: the connection's parameters here, the caller's skipped, any other refused.
  std::optional<std::string> values[connection_parameters.size()];
  for (unsigned position = 1; !query.empty(); ++position) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    if (std::find(caller_parameters.begin(), caller_parameters.end(), name) != caller_parameters.end()) continue;
    const auto known = std::find(connection_parameters.begin(), connection_parameters.end(), name);
    if (eq == std::string_view::npos || known == connection_parameters.end()) {
      std::string names;
      for (std::string_view n : caller_parameters) names += std::string(n) + ", ";
      return refuse("etcd URI query parameter " + std::to_string(position) +
                    " is not one planfence knows (not shown: a misspelt name may come with a secret); known: " + names +
                    "user, password-file, password-env, ca-file, cert-file, key-file, server-name");
    }
    if (name == "password") {
      return refuse("a password in an etcd URI is refused (it would end up in shell histories and process lists): "
                    "give password-file=PATH or password-env=VAR");
    }
    std::optional<std::string>& slot = values[static_cast<std::size_t>(known - connection_parameters.begin())];
    if (slot) return refuse("etcd URI parameter " + std::string(name) + " given twice");
    auto value = uri_internal::percent_decode(pair.substr(eq + 1));
    if (!value || value->empty()) return refuse("etcd URI parameter " + std::string(name) + " has an empty or badly escaped value");
    slot = std::move(*value);
  }
  const auto& user = values[0];
  const auto& password_file = values[1];
  const auto& password_env = values[2];
  if (password_file && password_env) return refuse("give the password once: password-file or password-env");
  if (user && !password_file && !password_env) {
    return refuse("user=NAME needs its password: password-file=PATH (owner-only) or password-env=VAR");
  }
  if (!user && (password_file || password_env)) return refuse("a password needs its user: add user=NAME");
  if (user) {
    credentials who;
    who.user = *user;
    if (password_file) {
      auto password = read_password_file(*password_file);
      if (!password) return refuse(password.error().detail.view(), password.error().code);
      who.password = std::move(*password);
    } else {
      const bool shown = password_env->size() <= 64 && std::all_of(password_env->begin(), password_env->end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
      const std::string variable = shown ? "environment variable " + *password_env : "the environment variable (name not shown)";
      const char* text = std::getenv(password_env->c_str());
      if (text == nullptr || *text == '\0') return refuse(variable + " (password-env) is not set or empty");
      who.password = text;
    }
    config->auth = std::move(who);
  }
  const bool tls_parameter = values[4] || values[5] || values[6] || values[7];
  if (tls_parameter && !tls) return refuse("ca-file, cert-file, key-file and server-name are for TLS: use etcds://");
  if (tls) {
    if constexpr (!tls_compiled) return refuse(tls_not_compiled_text, errc::io_error);
    config->tls.enabled = true;
    if (values[4]) config->tls.ca_file = *values[4];
    if (values[5]) config->tls.cert_file = *values[5];
    if (values[6]) config->tls.key_file = *values[6];
    if (values[7]) config->tls.server_name = *values[7];
    if (config->tls.cert_file.empty() != config->tls.key_file.empty()) {
      return refuse("give both cert-file and key-file (a client certificate needs its key), or neither");
    }
  }
  config->key_prefix = prefix;
  return location{std::move(*config), std::move(prefix)};
}

/// A failed etcd call as the etcd components report it: errc::store_unavailable, what was being
/// done, and the client's error in full (etcd's own words: the member, the HTTP status, the
/// gateway's error message and gRPC code, or the socket error).
[[nodiscard]] inline unexpected_error etcd_failure(std::string_view what, const error& e) {
  std::string detail(what);
  detail += ": ";
  if (e.code != errc::store_unavailable) {
    detail += to_string(e.code);
    detail += ": ";
  }
  detail += e.detail.view();
  return fail(errc::store_unavailable, detail);
}

/// One key as etcd holds it.
struct key_value {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

/// The answer to a range: the store's revision when it was read, and the keys.
struct range_result {
  std::int64_t revision = 0;
  std::vector<key_value> kvs;
  std::int64_t count = 0;
  bool more = false;
};

/// The end of the range of every key that starts with `prefix` (etcd's "prefix end").
[[nodiscard]] inline std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xFF) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

/// One comparison in a transaction (etcd's Compare).
struct compare {
  enum class target : std::uint8_t { version, create, mod, value, lease };
  enum class relation : std::uint8_t { equal, greater, less, not_equal };
  std::string key;
  std::string range_end;  ///< non-empty: every key in [key, range_end) must satisfy it
  target what = target::mod;
  relation how = relation::equal;
  std::int64_t number = 0;  ///< for version, create, mod, lease
  std::string value;        ///< for value (compared as bytes)

  [[nodiscard]] static compare mod_revision(std::string key, std::int64_t revision, relation how = relation::equal) {
    return compare{std::move(key), {}, target::mod, how, revision, {}};
  }
  [[nodiscard]] static compare create_revision(std::string key, std::int64_t revision, relation how = relation::equal) {
    return compare{std::move(key), {}, target::create, how, revision, {}};
  }
  [[nodiscard]] static compare value_is(std::string key, std::string value, relation how = relation::equal) {
    return compare{std::move(key), {}, target::value, how, 0, std::move(value)};
  }
};

/// One operation in a transaction (etcd's RequestOp).
struct op {
  enum class kind : std::uint8_t { range, put, delete_range };
  kind what = kind::range;
  std::string key;
  std::string range_end;
  std::string value;
  std::int64_t lease = 0;
  std::int64_t limit = 0;
  bool keys_only = false;

  [[nodiscard]] static op range(std::string key, std::string range_end = {}, std::int64_t limit = 0,
                                bool keys_only = false) {
    return op{kind::range, std::move(key), std::move(range_end), {}, 0, limit, keys_only};
  }
  [[nodiscard]] static op put(std::string key, std::string value, std::int64_t lease = 0) {
    return op{kind::put, std::move(key), {}, std::move(value), lease, 0, false};
  }
  [[nodiscard]] static op remove(std::string key, std::string range_end = {}) {
    return op{kind::delete_range, std::move(key), std::move(range_end), {}, 0, 0, false};
  }
};

/// The answer to a transaction: which branch ran, the revision after it, and for each range
/// operation of that branch its result (in order; puts and deletes leave an empty entry).
struct txn_result {
  bool succeeded = false;
  std::int64_t revision = 0;
  std::vector<range_result> responses;
};

/// A granted lease.
struct lease_grant {
  std::int64_t id = 0;
  std::int64_t ttl_seconds = 0;
};

/// Options of a plain range.
struct range_options {
  std::string range_end;   ///< empty: just `key`
  std::int64_t limit = 0;  ///< 0: no limit
  bool keys_only = false;
  bool descending = false;  ///< sort by key, largest first
};

namespace json_body {

inline void field(std::string& out, bool& first, std::string_view name) {
  if (!first) out += ',';
  first = false;
  detail::json_append_string(out, name);
  out += ':';
}
inline void bytes_field(std::string& out, bool& first, std::string_view name, std::string_view bytes) {
  if (bytes.empty()) return;
  field(out, first, name);
  detail::json_append_string(out, detail::base64_encode(bytes));
}
inline void int_field(std::string& out, bool& first, std::string_view name, std::int64_t value) {
  if (value == 0) return;
  field(out, first, name);
  out += '"';
  out += std::to_string(value);
  out += '"';
}

inline std::string compare_json(const compare& c) {
  static constexpr std::string_view targets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
  static constexpr std::string_view relations[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  static constexpr std::string_view number_fields[] = {"version", "create_revision", "mod_revision", "", "lease"};
  std::string out = "{";
  bool first = true;
  bytes_field(out, first, "key", c.key);
  bytes_field(out, first, "range_end", c.range_end);
  field(out, first, "target");
  detail::json_append_string(out, targets[static_cast<int>(c.what)]);
  field(out, first, "result");
  detail::json_append_string(out, relations[static_cast<int>(c.how)]);
  if (c.what == compare::target::value) {
    field(out, first, "value");
    detail::json_append_string(out, detail::base64_encode(c.value));
  } else {
    // Zero is sent explicitly: it is the value compared against, not an omitted default.
    field(out, first, number_fields[static_cast<int>(c.what)]);
    out += '"' + std::to_string(c.number) + '"';
  }
  out += '}';
  return out;
}

inline std::string range_json(std::string_view key, const range_options& o) {
  std::string out = "{";
  bool first = true;
  bytes_field(out, first, "key", key);
  bytes_field(out, first, "range_end", o.range_end);
  int_field(out, first, "limit", o.limit);
  if (o.keys_only) {
    field(out, first, "keys_only");
    out += "true";
  }
  if (o.descending) {
    field(out, first, "sort_order");
    out += "\"DESCEND\"";
    field(out, first, "sort_target");
    out += "\"KEY\"";
  }
  out += '}';
  return out;
}

inline std::string op_json(const op& o) {
  std::string out = "{";
  bool first = true;
  switch (o.what) {
    case op::kind::range:
      field(out, first, "request_range");
      out += range_json(o.key, range_options{o.range_end, o.limit, o.keys_only, false});
      break;
    case op::kind::put: {
      field(out, first, "request_put");
      std::string inner = "{";
      bool inner_first = true;
      bytes_field(inner, inner_first, "key", o.key);
      bytes_field(inner, inner_first, "value", o.value);
      int_field(inner, inner_first, "lease", o.lease);
      inner += '}';
      out += inner;
      break;
    }
    case op::kind::delete_range: {
      field(out, first, "request_delete_range");
      std::string inner = "{";
      bool inner_first = true;
      bytes_field(inner, inner_first, "key", o.key);
      bytes_field(inner, inner_first, "range_end", o.range_end);
      inner += '}';
      out += inner;
      break;
    }
  }
  out += '}';
  return out;
}

/// The JSON body of a transaction: {"compare":[...],"success":[...],"failure":[...]}.
inline std::string txn(const std::vector<compare>& compares, const std::vector<op>& success, const std::vector<op>& failure) {
  std::string body = "{\"compare\":[";
  for (std::size_t i = 0; i < compares.size(); ++i) {
    if (i != 0) body += ',';
    body += compare_json(compares[i]);
  }
  body += "],\"success\":[";
  for (std::size_t i = 0; i < success.size(); ++i) {
    if (i != 0) body += ',';
    body += op_json(success[i]);
  }
  body += "],\"failure\":[";
  for (std::size_t i = 0; i < failure.size(); ++i) {
    if (i != 0) body += ',';
    body += op_json(failure[i]);
  }
  body += "]}";
  return body;
}

}  // namespace json_body

/// Reads a RangeResponse object (also the response_range inside a txn).
[[nodiscard]] inline result<range_result> read_range(const detail::json_value& doc) {
  range_result out;
  if (const detail::json_value* header = doc.find("header")) {
    auto revision = header->int64_of("revision");
    if (!revision) return unexpected_error(revision.error());
    out.revision = *revision;
  }
  auto count = doc.int64_of("count");
  if (!count) return unexpected_error(count.error());
  out.count = *count;
  out.more = doc.bool_of("more");
  if (const detail::json_value* kvs = doc.find("kvs")) {
    if (!kvs->is_array()) return fail(errc::parse_error, "kvs is not an array");
    for (const detail::json_value& item : kvs->items()) {
      if (!item.is_object()) return fail(errc::parse_error, "a kv is not an object");
      key_value kv;
      auto key = detail::base64_decode(item.string_of("key"));
      auto value = detail::base64_decode(item.string_of("value"));
      if (!key || !value) return fail(errc::parse_error, "a kv's key or value is not base64");
      kv.key = std::move(*key);
      kv.value = std::move(*value);
      auto create = item.int64_of("create_revision");
      auto mod = item.int64_of("mod_revision");
      auto version = item.int64_of("version");
      auto lease = item.int64_of("lease");
      if (!create || !mod || !version || !lease) return fail(errc::parse_error, "a kv's revision is not an integer");
      kv.create_revision = *create;
      kv.mod_revision = *mod;
      kv.version = *version;
      kv.lease = *lease;
      out.kvs.push_back(std::move(kv));
    }
  }
  return out;
}

/// Reads a TxnResponse object.
[[nodiscard]] inline result<txn_result> read_txn(const detail::json_value& doc) {
  txn_result out;
  out.succeeded = doc.bool_of("succeeded");
  if (const detail::json_value* header = doc.find("header")) {
    auto revision = header->int64_of("revision");
    if (!revision) return unexpected_error(revision.error());
    out.revision = *revision;
  }
  if (const detail::json_value* responses = doc.find("responses")) {
    if (!responses->is_array()) return fail(errc::parse_error, "responses is not an array");
    for (const detail::json_value& item : responses->items()) {
      if (const detail::json_value* range = item.find("response_range")) {
        auto r = read_range(*range);
        if (!r) return unexpected_error(r.error());
        out.responses.push_back(std::move(*r));
      } else {
        out.responses.emplace_back();
      }
    }
  }
  return out;
}

/// A client for one etcd cluster. Thread safety: every member may be called concurrently (they
/// serialise on one mutex).
class client {
 public:
  /// A client for `config`. A TLS setup that fails (TLS not compiled in, a CA, certificate or key
  /// file that cannot be used) is reported by every call (errc::io_error), not here.
  explicit client(client_config config) : config_(std::move(config)) {
    PLANFENCE_ASSERT(!config_.members.empty());
    PLANFENCE_ASSERT(config_.members.size() <= members_max);
    auto wrapper = make_tls_wrapper(config_.tls);
    if (!wrapper) setup_failure_ = wrapper.error();
    std::shared_ptr<detail::stream_wrapper> shared = wrapper ? std::move(*wrapper) : nullptr;
    for (const member_address& m : config_.members) connections_.emplace_back(m.host, m.port, config_.limits, shared);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  [[nodiscard]] const client_config& config() const noexcept { return config_; }

  /// Reads `key` (or the range in `options`), linearizably. Idempotent.
  [[nodiscard]] result<range_result> range(std::string_view key, const range_options& options = {}) {
    auto doc = call("/v3/kv/range", json_body::range_json(key, options), true);
    if (!doc) return unexpected_error(doc.error());
    return read_range(*doc);
  }

  /// Writes `key`; returns the revision of the write.
  [[nodiscard]] result<std::int64_t> put(std::string_view key, std::string_view value, std::int64_t lease = 0) {
    std::string body = "{";
    bool first = true;
    json_body::bytes_field(body, first, "key", key);
    json_body::bytes_field(body, first, "value", value);
    json_body::int_field(body, first, "lease", lease);
    body += '}';
    auto doc = call("/v3/kv/put", body, false);
    if (!doc) return unexpected_error(doc.error());
    const detail::json_value* header = doc->find("header");
    if (header == nullptr) return fail(errc::parse_error, "put response without a header");
    return header->int64_of("revision");
  }

  /// Deletes `key` (or [key, range_end)); returns how many keys were deleted.
  [[nodiscard]] result<std::int64_t> delete_range(std::string_view key, std::string_view range_end = {}) {
    std::string body = "{";
    bool first = true;
    json_body::bytes_field(body, first, "key", key);
    json_body::bytes_field(body, first, "range_end", range_end);
    body += '}';
    auto doc = call("/v3/kv/deleterange", body, false);
    if (!doc) return unexpected_error(doc.error());
    return doc->int64_of("deleted");
  }

  /// One transaction: if every compare holds, `success` runs, else `failure`; atomically.
  [[nodiscard]] result<txn_result> txn(const std::vector<compare>& compares, const std::vector<op>& success,
                                       const std::vector<op>& failure) {
    // A transaction made only of reads may be retried anywhere.
    bool read_only = true;
    for (const op& o : success) read_only = read_only && o.what == op::kind::range;
    for (const op& o : failure) read_only = read_only && o.what == op::kind::range;
    return txn_body(json_body::txn(compares, success, failure), read_only);
  }

  /// One transaction whose JSON body the caller assembled (json_body::txn, or the fragments of
  /// json_body::compare_json and json_body::op_json joined the same way): for callers that must
  /// know the exact size of what is sent (etcd's --max-request-bytes), or that send the same
  /// fragments again. `read_only`: every operation is a range (the call may then be retried on
  /// another member).
  [[nodiscard]] result<txn_result> txn_body(const std::string& body, bool read_only) {
    auto doc = call("/v3/kv/txn", body, read_only);
    if (!doc) return unexpected_error(doc.error());
    return read_txn(*doc);
  }

  /// Grants a lease of `ttl_seconds` (etcd may raise it to its minimum).
  [[nodiscard]] result<lease_grant> grant(std::int64_t ttl_seconds) {
    PLANFENCE_ASSERT(ttl_seconds > 0);
    // Not idempotent in effect (a second grant is another lease), but an orphan lease only
    // expires: retrying elsewhere is harmless.
    auto doc = call("/v3/lease/grant", "{\"TTL\":\"" + std::to_string(ttl_seconds) + "\"}", true);
    if (!doc) return unexpected_error(doc.error());
    if (!doc->string_of("error").empty()) {
      return fail(errc::store_unavailable, "lease grant: etcd says \"" + std::string(doc->string_of("error")) + "\"");
    }
    auto id = doc->int64_of("ID");
    auto ttl = doc->int64_of("TTL");
    if (!id || !ttl) return fail(errc::parse_error, "lease grant: bad ID or TTL");
    if (*id == 0 || *ttl <= 0) {
      return fail(errc::store_unavailable,
                  "lease grant refused: etcd answered ID " + std::to_string(*id) + ", TTL " + std::to_string(*ttl));
    }
    return lease_grant{*id, *ttl};
  }

  /// Refreshes lease `id` once; returns its TTL in seconds, 0 when the lease is gone (expired or
  /// revoked). Idempotent.
  [[nodiscard]] result<std::int64_t> keep_alive(std::int64_t id) {
    auto doc = call("/v3/lease/keepalive", "{\"ID\":\"" + std::to_string(id) + "\"}", true);
    if (!doc) return unexpected_error(doc.error());
    // The gateway streams: each message is {"result": LeaseKeepAliveResponse}, or {"error": ...}.
    if (const detail::json_value* error = doc->find("error")) {
      return fail(errc::store_unavailable, "keep-alive: " + (error->is_object() ? std::string(error->string_of("message")) : error->text()));
    }
    const detail::json_value* result_object = doc->find("result");
    if (result_object == nullptr) return fail(errc::parse_error, "keep-alive response without a result");
    return result_object->int64_of("TTL");
  }

  /// Revokes lease `id` (deleting every key attached to it). A lease already gone is success.
  [[nodiscard]] result<void> revoke(std::int64_t id) {
    auto doc = call("/v3/lease/revoke", "{\"ID\":\"" + std::to_string(id) + "\"}", false);
    if (!doc && doc.error().code != errc::not_found) return unexpected_error(doc.error());
    return ok();
  }

  /// What the member the client talks to says about itself (/v3/maintenance/status): its id and
  /// the leader's id (0: it knows no leader). Idempotent; for tests and operators.
  struct member_status {
    std::uint64_t member_id = 0;
    std::uint64_t leader = 0;
    std::int64_t raft_term = 0;
  };
  [[nodiscard]] result<member_status> status() {
    auto doc = call("/v3/maintenance/status", "{}", true);
    if (!doc) return unexpected_error(doc.error());
    const detail::json_value* header = doc->find("header");
    if (header == nullptr) return fail(errc::parse_error, "status response without a header");
    auto id = header->int64_of("member_id");
    auto leader = doc->int64_of("leader");
    auto term = doc->int64_of("raftTerm");
    if (!id || !leader || !term) return fail(errc::parse_error, "status: bad member id");
    return member_status{static_cast<std::uint64_t>(*id), static_cast<std::uint64_t>(*leader), *term};
  }

  /// HTTP requests sent so far (each attempt on each member): what a batch costs in round trips.
  [[nodiscard]] std::uint64_t requests_sent() const noexcept { return requests_sent_.load(std::memory_order_relaxed); }

  /// Successful authentications so far (the first, then one per token renewal): for tests.
  [[nodiscard]] std::uint64_t authentications() const noexcept { return authentications_.load(std::memory_order_relaxed); }

  /// The member the client talks to now (its index in config().members).
  [[nodiscard]] std::size_t current_member() const noexcept {
    std::lock_guard lock(mutex_);
    return current_;
  }

  /// Replaces the token with one etcd never issued, as an expired one looks to etcd: for tests
  /// of the renewal.
  void spoil_token_for_test() {
    std::lock_guard lock(mutex_);
    if (!token_.empty()) token_ = "planfence-spoilt-token.0";
  }

 private:
  /// One call: authenticate first when needed, then call_members; when a member refused the
  /// token (a refusal made before the request was applied), authenticate again and send once
  /// more.
  result<detail::json_value> call(std::string_view path, const std::string& body, bool idempotent) {
    std::lock_guard lock(mutex_);
    if (setup_failure_) return unexpected_error(*setup_failure_);
    if (config_.auth && token_.empty() && !auth_disabled_) {
      if (auto a = authenticate(); !a) return unexpected_error(a.error());
    }
    auto first = call_members(path, body, idempotent);
    if (first || !config_.auth || !token_refused_) return first;
    token_.clear();
    auth_disabled_ = false;
    if (auto a = authenticate(); !a) return unexpected_error(a.error());
    return call_members(path, body, idempotent);
  }

  /// POST /v3/auth/authenticate {name, password}: the token, or auth_disabled_ when the cluster
  /// has authentication off. The password is in the body only; no message carries it.
  result<void> authenticate() {
    const credentials& who = *config_.auth;
    std::string body = "{\"name\":";
    detail::json_append_string(body, who.user);
    body += ",\"password\":";
    detail::json_append_string(body, who.password);
    body += '}';
    token_.clear();
    // Idempotent in effect (another token at worst), so it may go to any member.
    auto doc = call_members("/v3/auth/authenticate", body, true);
    if (!doc) {
      const std::string& why = doc.error().detail;
      if (why.find("authentication is not enabled") != std::string::npos) {
        auth_disabled_ = true;  // used without a token until a member asks for one
        return ok();
      }
      if (why.find("authentication failed") != std::string::npos) {
        return fail(errc::authentication_failed, "etcd refused user '" + who.user +
                                                     "' (wrong user name or password; the password is not shown): " + why);
      }
      if (doc.error().code == errc::parse_error) {  // the excerpt of an answer might hold a token
        return fail(errc::parse_error, "authenticating as etcd user '" + who.user + "': etcd's answer is not what it sends");
      }
      return fail(doc.error().code, "authenticating as etcd user '" + who.user + "': " + why);
    }
    std::string token(doc->string_of("token"));
    if (token.empty()) return fail(errc::parse_error, "authenticating as etcd user '" + who.user + "': no token in etcd's answer");
    for (const char c : token) {
      if (static_cast<unsigned char>(c) < 0x21 || c == 0x7F) {
        return fail(errc::parse_error, "authenticating as etcd user '" + who.user + "': etcd's token is not a header value");
      }
    }
    token_ = std::move(token);
    authentications_.fetch_add(1, std::memory_order_relaxed);
    return ok();
  }

  /// Whether etcd's message refuses the token itself, before applying anything: expired or
  /// unknown ("invalid auth token"), issued before the auth store changed ("revision of auth
  /// store is old"), or missing while auth is on ("user name is empty").
  [[nodiscard]] static bool refuses_token(std::string_view message) noexcept {
    return message.find("invalid auth token") != std::string_view::npos ||
           message.find("revision of auth store is old") != std::string_view::npos ||
           message.find("user name is empty") != std::string_view::npos;
  }

  /// POSTs to one member after another until one answers. `idempotent`: a request that may have
  /// reached a member may be sent again elsewhere. Sets token_refused_ when the call failed
  /// because a member refused the token.
  result<detail::json_value> call_members(std::string_view path, const std::string& body, bool idempotent) {
    token_refused_ = false;
    std::string headers;
    if (!token_.empty()) headers = "Authorization: " + token_ + "\r\n";
    std::string last_error = "no member tried";
    for (std::size_t tried = 0; tried < connections_.size(); ++tried) {
      detail::http_connection& c = connections_[current_];
      const std::string who = c.host() + ":" + std::to_string(c.port());
      const bool was_connected = c.connected();
      requests_sent_.fetch_add(1, std::memory_order_relaxed);
      auto response = c.post(path, body, detail::deadline_after(config_.request_timeout), idempotent, headers);
      if (!response) {
        last_error = who + ": " + response.error().message();
        // Connecting failed: nothing was sent, so the next member may be tried whatever the request.
        const bool nothing_sent = !was_connected && !c.connected() && response.error().detail.starts_with("connect");
        if (!idempotent && !nothing_sent) {
          // Not resent; but the next call goes to the next member, so that a member that
          // accepts connections without answering (a paused process) cannot hold writes forever.
          next_member();
          return fail(errc::store_unavailable, "outcome unknown: " + last_error);
        }
        next_member();
        continue;
      }
      auto doc = detail::json_parse(response->body);
      if (!doc && response->status != 200) {
        // An error from etcd's HTTP layer before the gateway, in plain text (no token in it).
        std::string says = printable_excerpt(response->body);
        if (says.find("CommonName") != std::string::npos) {
          says += "\" (etcd's JSON gateway refuses a client certificate whose subject has a CommonName: issue one "
                  "without a CN, docs/etcd.md)";
        } else {
          says += "\"";
        }
        return fail(errc::store_unavailable, who + ": HTTP " + std::to_string(response->status) + ": etcd says \"" + says);
      }
      if (!doc) {
        c.close();
        return fail(errc::parse_error, who + ": HTTP " + std::to_string(response->status) + " with a body that is not JSON (" +
                                           doc.error().message() + "): " + printable_excerpt(response->body));
      }
      // An error in gRPC terms: {"error": "...", "message": "...", "code": N}, or in a streamed
      // answer (keep-alive) {"error": {"grpc_code": N, "message": "..."}}; quoted whole.
      const detail::json_value* streamed = doc->find("error");
      const bool streamed_error = streamed != nullptr && streamed->is_object();
      if (response->status == 200 && !streamed_error) return std::move(*doc);
      const detail::json_value& error_object = streamed_error ? *streamed : *doc;
      std::string message(error_object.string_of("message"));
      if (message.empty()) message = std::string(error_object.string_of("error"));
      if (message.empty()) message = "(no error message) " + printable_excerpt(response->body);
      auto code = error_object.int64_of(streamed_error ? "grpc_code" : "code");
      const std::int64_t grpc_code = code ? *code : 0;
      last_error = who + ": HTTP " + std::to_string(response->status) + ": etcd says \"" + message + "\"" +
                   (grpc_code != 0 ? " (gRPC code " + std::to_string(grpc_code) + ")" : std::string());
      if (grpc_code == 5 && !streamed_error) return fail(errc::not_found, last_error);
      if (refuses_token(message)) {
        // Refused before it was applied (etcd checks the token before proposing, and the auth
        // revision before applying): call() authenticates and sends it again.
        token_refused_ = true;
        return fail(errc::authentication_failed, last_error);
      }
      if (grpc_code == 7 || message.find("permission denied") != std::string::npos) {
        const std::string prefix = config_.key_prefix.empty() ? std::string("the keys it uses") : config_.key_prefix + "/";
        const std::string user = config_.auth ? "etcd user '" + config_.auth->user + "'" : std::string("an unauthenticated client");
        return fail(errc::authentication_failed,
                    user + " may not do this under " + prefix + ": " + last_error +
                        "; grant its role readwrite on that prefix: etcdctl role grant-permission --prefix=true ROLE "
                        "readwrite " + prefix + " (docs/etcd.md)");
      }
      // 14 Unavailable (no leader, member stopping) and 4 deadline exceeded: another member may
      // answer. The request was refused before it was applied only for "no leader"; otherwise
      // its outcome is unknown.
      const bool no_leader = message.find("no leader") != std::string::npos;
      if ((grpc_code == 14 || grpc_code == 4) && (idempotent || no_leader)) {
        next_member();
        continue;
      }
      return fail(errc::store_unavailable, last_error);
    }
    return fail(errc::store_unavailable, "no etcd member answered: " + last_error);
  }

  void next_member() noexcept { current_ = (current_ + 1) % connections_.size(); }

  /// At most 200 bytes of a response body, non-printable bytes as '?', for error messages.
  static std::string printable_excerpt(std::string_view body) {
    std::string out;
    for (const char c : body.substr(0, 200)) out += (c >= 0x20 && c < 0x7F) ? c : '?';
    if (body.size() > 200) out += "...";
    return out.empty() ? std::string("(empty body)") : out;
  }

  client_config config_;
  mutable std::mutex mutex_;
  std::vector<detail::http_connection> connections_;
  std::size_t current_ = 0;
  std::atomic<std::uint64_t> requests_sent_{0};
  std::atomic<std::uint64_t> authentications_{0};
  std::optional<error> setup_failure_;  // the TLS setup's, reported by every call
  std::string token_;                   // etcd's auth token: sent, never printed
  bool auth_disabled_ = false;          // the cluster answered that authentication is off
  bool token_refused_ = false;          // the last call_members failed on a refused token
};

}  // namespace etcd
}  // namespace v1
}  // namespace planfence
