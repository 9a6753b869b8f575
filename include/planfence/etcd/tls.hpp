// planfence/etcd/tls.hpp: TLS for the etcd client, compiled only when the embedder opts in.
//
// What it is: the one place planfence touches a library beyond the standard one. Following
// cpp-httplib's convention, the TLS transport is compiled only in a translation unit that defines
// PLANFENCE_ETCD_OPENSSL before including any planfence etcd header, and the program must then
// link OpenSSL 3 (Debian: libssl-dev; CMake: find_package(OpenSSL) and OpenSSL::SSL, or configure
// planfence with -DPLANFENCE_WITH_OPENSSL=ON, which does both for planfence-ctl and the tests and
// offers the target planfence::planfence_openssl). Without the macro this header includes
// nothing but planfence headers, and an `etcds://` URI or a client_config asking for TLS is
// refused with an error that says how to enable it (tls_not_compiled_text).
//
//     #define PLANFENCE_ETCD_OPENSSL
//     #include <planfence/etcd/store.hpp>
//     auto store = planfence::etcd_store::open_uri(
//         "etcds://etcd1.example:2379/planfence/prod?ca-file=/etc/planfence/ca.pem"
//         "&cert-file=/etc/planfence/client.pem&key-file=/etc/planfence/client.key");
//
// What it checks: the server's certificate chain against `ca_file` (or the system's trust store
// when none is given), its name against the member's host (an IP literal against the
// certificate's IP SANs, a name against its DNS SANs; `server_name` overrides what is checked,
// for members reached by address whose certificate names them), TLS 1.2 at least. A client
// certificate and key (`cert_file`, `key_file`) are presented when given (etcd's
// --client-cert-auth requires one). The key file must be readable by its owner only, like every
// secret file planfence reads.
//
// Errors: errc::io_error whose detail starts with "connect HOST:PORT: TLS" and names OpenSSL's
// reason (a failed verification also names the certificate problem: "certificate has expired",
// "unable to get local issuer certificate", "Hostname mismatch"); nothing secret is in them.
// With TLS 1.3 a server that refuses the client's certificate says so after the handshake: the
// first request then fails with the server's alert ("certificate required", "certificate
// expired").
//
// Cost: one handshake per connection (connections are kept alive), then OpenSSL's record layer.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "../result.hpp"
#include "../detail/socket.hpp"
#include "http.hpp"

#ifdef PLANFENCE_ETCD_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#endif

namespace planfence {
inline namespace v1 {
namespace etcd {

/// How a client speaks TLS to the members (etcds:// URIs). Paths only: nothing secret.
struct tls_options {
  bool enabled = false;
  std::string ca_file;      ///< PEM CA certificates the server's chain must lead to; empty: the system's
  std::string cert_file;    ///< PEM client certificate (chain); empty: none presented
  std::string key_file;     ///< PEM private key of cert_file (owner-only file)
  std::string server_name;  ///< the name checked in the server's certificate; empty: each member's host
};

/// Whether this translation unit was compiled with the TLS transport (PLANFENCE_ETCD_OPENSSL).
#ifdef PLANFENCE_ETCD_OPENSSL
inline constexpr bool tls_compiled = true;
#else
inline constexpr bool tls_compiled = false;
#endif

/// What a TLS request says in a build without TLS.
inline constexpr std::string_view tls_not_compiled_text =
    "TLS (etcds://) is not compiled into this program: define PLANFENCE_ETCD_OPENSSL before including planfence "
    "and link OpenSSL (Debian: libssl-dev), or configure planfence with -DPLANFENCE_WITH_OPENSSL=ON (docs/etcd.md)";

/// The largest secret file (password, private key) read: 64 KiB.
inline constexpr std::size_t secret_file_size_max = 65536;

/// Checks that `path` is a regular file its group and others may not use (`what` names the
/// option in messages: "password-file", "key-file"). Errors (errc::io_error) name the file and
/// its mode, never its content.
[[nodiscard]] inline result<void> check_owner_only(const std::string& path, std::string_view what) {
  struct ::stat info {};
  const std::string named = std::string(what) + " " + path;
  if (::stat(path.c_str(), &info) != 0) {
    const int e = errno;
    return fail(errc::io_error, "cannot open " + named + ": " + std::strerror(e));
  }
  if (!S_ISREG(info.st_mode)) return fail(errc::io_error, named + " is not a regular file");
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return fail(errc::io_error, named + " has mode " + mode +
                                    ": its group or others may use it, and it holds a secret; make it readable by its "
                                    "owner only (chmod 600 " + path + ")");
  }
  if (static_cast<std::uintmax_t>(info.st_size) > secret_file_size_max) {
    return fail(errc::io_error, named + " is larger than " + std::to_string(secret_file_size_max) + " octets");
  }
  return ok();
}

#ifdef PLANFENCE_ETCD_OPENSSL
namespace tls_internal {

/// OpenSSL's queued errors as text (reasons only: OpenSSL puts no secret in them); clears them.
[[nodiscard]] inline std::string openssl_errors() {
  std::string out;
  while (const unsigned long code = ::ERR_get_error()) {
    char text[256];
    ::ERR_error_string_n(code, text, sizeof text);
    const char* reason = ::ERR_reason_error_string(code);
    if (!out.empty()) out += "; ";
    out += reason != nullptr ? reason : text;
  }
  return out.empty() ? std::string("no reason given") : out;
}

/// One TLS session over a connected non-blocking socket (owned by the http_connection).
class openssl_stream final : public detail::secure_stream {
 public:
  openssl_stream(SSL* ssl, int fd, std::string who) noexcept : ssl_(ssl), fd_(fd), who_(std::move(who)) {}
  openssl_stream(const openssl_stream&) = delete;
  openssl_stream& operator=(const openssl_stream&) = delete;
  ~openssl_stream() override { ::SSL_free(ssl_); }

  [[nodiscard]] result<void> send_all(std::span<const std::uint8_t> bytes, detail::socket_deadline deadline) override {
    std::size_t done = 0;
    while (done < bytes.size()) {
      std::size_t written = 0;
      ::ERR_clear_error();
      if (::SSL_write_ex(ssl_, bytes.data() + done, bytes.size() - done, &written) == 1) {
        done += written;
        continue;
      }
      if (auto waited = wait(::SSL_get_error(ssl_, 0), deadline, "send"); !waited) return waited;
    }
    return ok();
  }

  [[nodiscard]] result<std::size_t> receive_some(std::span<std::uint8_t> buffer, detail::socket_deadline deadline) override {
    for (;;) {
      std::size_t got = 0;
      ::ERR_clear_error();
      if (::SSL_read_ex(ssl_, buffer.data(), buffer.size(), &got) == 1) return got;
      const int why = ::SSL_get_error(ssl_, 0);
      if (why == SSL_ERROR_ZERO_RETURN) return std::size_t{0};
      if (auto waited = wait(why, deadline, "receive"); !waited) return unexpected_error(waited.error());
    }
  }

  /// Waits for what OpenSSL wants (`why`, from SSL_get_error), or fails with its reason.
  [[nodiscard]] result<void> wait(int why, detail::socket_deadline deadline, std::string_view what) {
    const std::string doing = std::string(what) + " (TLS, " + who_ + ")";
    if (why == SSL_ERROR_WANT_READ) return detail::socket_internal::wait_ready(fd_, POLLIN, deadline, doing);
    if (why == SSL_ERROR_WANT_WRITE) return detail::socket_internal::wait_ready(fd_, POLLOUT, deadline, doing);
    if (why == SSL_ERROR_SYSCALL && errno != 0) return detail::socket_internal::errno_failure(doing, errno);
    return fail(errc::io_error, doing + ": " + openssl_errors());
  }

 private:
  SSL* ssl_;
  int fd_;
  std::string who_;
};

/// The handshake with one member: SNI for names, the name or address checked, the chain
/// verified against the context's CAs.
class openssl_wrapper final : public detail::stream_wrapper {
 public:
  openssl_wrapper(SSL_CTX* context, std::string server_name) noexcept : context_(context), server_name_(std::move(server_name)) {}
  openssl_wrapper(const openssl_wrapper&) = delete;
  openssl_wrapper& operator=(const openssl_wrapper&) = delete;
  ~openssl_wrapper() override { ::SSL_CTX_free(context_); }

  [[nodiscard]] result<std::unique_ptr<detail::secure_stream>> wrap(int fd, std::string_view host, std::uint16_t port,
                                                                    detail::socket_deadline deadline) override {
    const std::string who = (host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" : std::string(host)) +
                            ":" + std::to_string(port);
    const std::string doing = "connect " + who + ": TLS handshake";
    ::ERR_clear_error();
    SSL* ssl = ::SSL_new(context_);
    if (ssl == nullptr) return fail(errc::io_error, doing + ": " + openssl_errors());
    auto stream = std::make_unique<openssl_stream>(ssl, fd, who);  // frees ssl from here on
    if (::SSL_set_fd(ssl, fd) != 1) return fail(errc::io_error, doing + ": " + openssl_errors());
    const std::string name = server_name_.empty() ? std::string(host) : server_name_;
    unsigned char address[16];
    const bool is_address = ::inet_pton(AF_INET, name.c_str(), address) == 1 || ::inet_pton(AF_INET6, name.c_str(), address) == 1;
    if (is_address) {
      if (::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl), name.c_str()) != 1) {
        return fail(errc::io_error, doing + ": cannot check address " + name);
      }
    } else {
      // SNI (SSL_set_tlsext_host_name, spelt out: the macro's C cast fails -Wold-style-cast).
      if (::SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str())) != 1 ||
          ::SSL_set1_host(ssl, name.c_str()) != 1) {
        return fail(errc::io_error, doing + ": cannot check name " + name);
      }
    }
    for (;;) {
      ::ERR_clear_error();
      const int r = ::SSL_connect(ssl);
      if (r == 1) break;
      const int why = ::SSL_get_error(ssl, r);
      if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) {
        if (auto waited = detail::socket_internal::wait_ready(fd, why == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, doing);
            !waited) {
          return unexpected_error(waited.error());
        }
        continue;
      }
      std::string reason = openssl_errors();
      const long verified = ::SSL_get_verify_result(ssl);
      if (verified != X509_V_OK) {
        reason += ": ";
        reason += ::X509_verify_cert_error_string(verified);
        reason += " (checked against ";
        reason += is_address ? "address " : "name ";
        reason += name;
        reason += ")";
      } else if (why == SSL_ERROR_SYSCALL && errno != 0) {
        reason += std::string(": ") + std::strerror(errno);
      }
      return fail(errc::io_error, doing + " failed: " + reason);
    }
    return std::unique_ptr<detail::secure_stream>(std::move(stream));
  }

 private:
  SSL_CTX* context_;
  std::string server_name_;
};

}  // namespace tls_internal
#endif

/// The stream wrapper `options` ask for: nullptr when TLS is off. Loads the CA, certificate and
/// key files now, so a bad file is reported once, naming it. Errors: errc::io_error (a file that
/// cannot be read or used; TLS not compiled in, with tls_not_compiled_text).
[[nodiscard]] inline result<std::shared_ptr<detail::stream_wrapper>> make_tls_wrapper(const tls_options& options) {
  if (!options.enabled) return std::shared_ptr<detail::stream_wrapper>{};
#ifndef PLANFENCE_ETCD_OPENSSL
  return fail(errc::io_error, std::string(tls_not_compiled_text));
#else
  if (options.cert_file.empty() != options.key_file.empty()) {
    return fail(errc::io_error, "TLS: give both cert-file and key-file (a client certificate needs its key), or neither");
  }
  if (!options.key_file.empty()) {
    if (auto owner_only = check_owner_only(options.key_file, "key-file"); !owner_only) return unexpected_error(owner_only.error());
  }
  ::ERR_clear_error();
  SSL_CTX* context = ::SSL_CTX_new(::TLS_client_method());
  if (context == nullptr) return fail(errc::io_error, "TLS: " + tls_internal::openssl_errors());
  auto wrapper = std::make_shared<tls_internal::openssl_wrapper>(context, options.server_name);  // frees context
  ::SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  ::SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  ::SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF);  // a close without close_notify ends the body
#endif
  ::SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!options.ca_file.empty()) {
    if (::SSL_CTX_load_verify_locations(context, options.ca_file.c_str(), nullptr) != 1) {
      return fail(errc::io_error, "TLS: cannot use ca-file " + options.ca_file + ": " + tls_internal::openssl_errors());
    }
  } else if (::SSL_CTX_set_default_verify_paths(context) != 1) {
    return fail(errc::io_error, "TLS: cannot load the system's CA certificates: " + tls_internal::openssl_errors());
  }
  if (!options.cert_file.empty()) {
    if (::SSL_CTX_use_certificate_chain_file(context, options.cert_file.c_str()) != 1) {
      return fail(errc::io_error, "TLS: cannot use cert-file " + options.cert_file + ": " + tls_internal::openssl_errors());
    }
    if (::SSL_CTX_use_PrivateKey_file(context, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail(errc::io_error, "TLS: cannot use key-file " + options.key_file + ": " + tls_internal::openssl_errors());
    }
    if (::SSL_CTX_check_private_key(context) != 1) {
      return fail(errc::io_error, "TLS: key-file " + options.key_file + " is not the key of cert-file " + options.cert_file);
    }
  }
  return std::shared_ptr<detail::stream_wrapper>(std::move(wrapper));
#endif
}

}  // namespace etcd
}  // namespace v1
}  // namespace planfence
