// curl_slist.h — CurlSlist: a libcurl header list that frees itself, for
// the gateway client (rt_client.cpp) and the REST2 client (rest2_client.cpp).
#pragma once

#include <curl/curl.h>

#include <new>
#include <string>

namespace rtm {

struct CurlSlist {
    curl_slist* list = nullptr;
    CurlSlist() = default;
    CurlSlist(const CurlSlist&) = delete;
    CurlSlist& operator=(const CurlSlist&) = delete;
    ~CurlSlist() { curl_slist_free_all(list); }
    void add(const std::string& line) {
        curl_slist* next = curl_slist_append(list, line.c_str());
        if (!next) throw std::bad_alloc();
        list = next;
    }
};

}  // namespace rtm
