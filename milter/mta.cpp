// mta.cpp — reply-text sanitizing shared by every MtaApi.
#include "mta.h"

#include <algorithm>

#include "text.h"  // printable_char

namespace rtm {

std::string sanitize_reply_text(const std::string& text) {
    constexpr std::size_t kMax = 980;  // libmilter's MAXREPLYLEN
    std::string out;
    out.reserve(std::min(text.size() + 8, kMax));
    for (char c : text) {
        const std::size_t need = c == '%' ? 2 : 1;
        if (out.size() + need > kMax) break;
        if (c == '%') {
            out += "%%";
        } else {
            out += printable_char(c);
        }
    }
    return out;
}

}  // namespace rtm
