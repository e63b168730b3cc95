// multipart.cpp — multipart/form-data framing for the mail-gateway POST.
#include "multipart.h"

#include <sys/random.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "text.h"

namespace rtm {

std::vector<FormField> form_fields(const Target& target) {
    std::vector<FormField> fields;
    if (target.queue) fields.push_back({"queue", *target.queue});
    if (target.action) fields.push_back({"action", *target.action});
    if (target.ticket) fields.push_back({"ticket", *target.ticket});
    return fields;
}

std::string random_boundary() {
    unsigned char bytes[16];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0) throw std::runtime_error("getrandom failed");  // no entropy: a bug of the host
        got += static_cast<std::size_t>(n);
    }
    return "rt-milter-" +
           to_hex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

MultipartBody::MultipartBody(const std::vector<FormField>& fields, std::string prefix,
                             MessageView message, std::string boundary)
    : boundary_(std::move(boundary)), prefix_(std::move(prefix)), message_(std::move(message)) {
    for (const FormField& f : fields) {
        head_ += "--" + boundary_ + "\r\n";
        head_ += "Content-Disposition: form-data; name=\"" + f.name + "\"\r\n\r\n";
        head_ += f.value + "\r\n";
    }
    head_ += "--" + boundary_ + "\r\n";
    head_ += "Content-Disposition: form-data; name=\"message\"\r\n";
    head_ += "Content-Type: application/octet-stream\r\n\r\n";
    tail_ = "\r\n--" + boundary_ + "--\r\n";
}

long MultipartBody::read_at(std::uint64_t offset, char* buf, std::size_t len) const {
    std::size_t done = 0;
    std::uint64_t start = 0;  // where the current segment begins in the body
    auto copy_string = [&](const std::string& s) {
        std::uint64_t pos = offset + done;
        if (done < len && pos >= start && pos < start + s.size()) {
            auto n = static_cast<std::size_t>(
                std::min<std::uint64_t>(len - done, start + s.size() - pos));
            std::memcpy(buf + done, s.data() + (pos - start), n);
            done += n;
        }
        start += s.size();
    };
    copy_string(head_);
    copy_string(prefix_);
    std::uint64_t pos = offset + done;
    if (done < len && pos >= start && pos < start + message_.size()) {
        long n = message_.read_at(pos - start, buf + done, len - done);
        if (n < 0) return -1;
        done += static_cast<std::size_t>(n);
        if (offset + done < start + message_.size()) return static_cast<long>(done);  // short read
    }
    start += message_.size();
    copy_string(tail_);
    return static_cast<long>(done);
}

std::string MultipartBody::to_string() const {
    std::string out(size(), '\0');
    std::uint64_t off = 0;
    while (off < out.size()) {
        long n = read_at(off, out.data() + off, out.size() - off);
        if (n <= 0) throw std::runtime_error("MultipartBody: message unreadable");
        off += static_cast<std::uint64_t>(n);
    }
    return out;
}

}  // namespace rtm
