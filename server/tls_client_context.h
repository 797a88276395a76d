// TlsClientContext: the OpenSSL client settings of one kind of https
// upstream — which certificates are trusted, and whether they are checked
// at all — shared by every connection made with them.
//
// By default the system's CA certificates are trusted and both the
// certificate chain and the host name (or IP address) are verified.
// `ca_file` replaces the system's CAs with the PEM file's; `verify` false
// turns every check off (an explicit opt-out in the route's config).
//
// Thread-safety: Create from any thread; a created context is immutable
// and may be used by any number of threads at once (OpenSSL's SSL_CTX is
// safe for concurrent SSL_new once set up).

#ifndef FANOUT_SERVER_TLS_CLIENT_CONTEXT_H_
#define FANOUT_SERVER_TLS_CLIENT_CONTEXT_H_

#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace fanout {

struct TlsClientOptions {
  std::string ca_file;  // empty: the system's default CA paths
  bool verify = true;   // false: no certificate or host-name check
};

class TlsClientContext {
 public:
  // The context for `options`, or null with the reason in *error (e.g.
  // the CA file cannot be read or holds no certificate).
  static std::shared_ptr<const TlsClientContext> Create(const TlsClientOptions& options,
                                                        std::string* error);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool verify() const { return verify_; }

 private:
  TlsClientContext(SSL_CTX* ctx, bool verify) : ctx_(ctx), verify_(verify) {}
  SSL_CTX* const ctx_;  // owned
  const bool verify_;
};

// The OpenSSL error queue's most recent reason ("certificate verify
// failed", ...), emptied; `fallback` if it is empty.
std::string TakeOpenSslError(const std::string& fallback);

}  // namespace fanout

#endif  // FANOUT_SERVER_TLS_CLIENT_CONTEXT_H_
