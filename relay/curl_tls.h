// curl_tls.h — set_tls_options(): the TLS side of a ClientOptions put on a
// libcurl handle, in one place for the gateway client (rt_client.cpp) and
// the REST2 client (rest2_client.cpp): RT's certificate and host name
// verified unless told not to, the CA bundle, and a locked gateway's client
// certificate.
#pragma once

#include <curl/curl.h>

#include "rt_client.h"  // ClientOptions

namespace rtm {

// credentials: whether the client certificate goes to this URL (only to the
// origin first posted to; see same_origin in url.h).
inline void set_tls_options(CURL* c, const ClientOptions& options, bool credentials) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
    if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
    if (credentials && !options.client_cert.empty()) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, options.client_cert.c_str());
        curl_easy_setopt(c, CURLOPT_SSLKEY, options.client_key.c_str());
    }
}

}  // namespace rtm
