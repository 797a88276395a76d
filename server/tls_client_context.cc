#include "server/tls_client_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace fanout {

std::string TakeOpenSslError(const std::string& fallback) {
  unsigned long last = 0;
  while (const unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return fallback;
  const char* reason = ERR_reason_error_string(last);
  return reason != nullptr ? reason : fallback;
}

std::shared_ptr<const TlsClientContext> TlsClientContext::Create(
    const TlsClientOptions& options, std::string* error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = "cannot create a TLS context: " + TakeOpenSslError("out of memory");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A read that meets only a non-application record (a TLS 1.3 session
  // ticket) reads on instead of returning WANT_READ, which on these
  // blocking sockets would look like a read timeout.
  SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
  if (options.verify) {
    const int loaded = options.ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx)
                           : SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr);
    if (loaded != 1) {
      *error = (options.ca_file.empty() ? std::string("cannot load the system CA certificates")
                                        : "cannot load CA certificates from " + options.ca_file) +
               ": " + TakeOpenSslError("unknown error");
      SSL_CTX_free(ctx);
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return std::shared_ptr<const TlsClientContext>(new TlsClientContext(ctx, options.verify));
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

}  // namespace fanout
