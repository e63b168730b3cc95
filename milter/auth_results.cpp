// auth_results.cpp — a recursive-descent reader of RFC 8601 §2.2's grammar,
// one byte of lookahead, no recursion (comment nesting is counted), every
// loop bounded by the input's length.
#include "auth_results.h"

#include "text.h"  // ascii_lower

namespace rtm {
namespace {

constexpr int kMaxCommentDepth = 64;

bool is_wsp(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && !is_wsp(c)) || u == 0x7f;
}
bool is_keyword_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
// Ends a bare value: white space, the separators of the grammar, a quote.
bool ends_run(char c) {
    return is_wsp(c) || c == ';' || c == '(' || c == ')' || c == '"' || is_control(c);
}

class Reader {
  public:
    explicit Reader(std::string_view text) : text_(text) {}

    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }
    bool take(char c) {
        if (peek() != c || at_end()) return false;
        ++pos_;
        return true;
    }
    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }

    // Sets the error (the first one stays) and returns false.
    bool fail(const std::string& what) {
        if (error_.empty()) error_ = "at byte " + std::to_string(pos_) + ": " + what;
        return false;
    }

    // [CFWS]: white space and comments, "(...)" nested, with quoted-pairs.
    bool skip_cfws() {
        while (!at_end()) {
            const char c = peek();
            if (is_wsp(c)) {
                ++pos_;
            } else if (c == '(') {
                if (!skip_comment()) return false;
            } else if (is_control(c)) {
                return fail("control character");
            } else {
                break;
            }
        }
        return true;
    }

    // A quoted-string, unquoted into out; the opening '"' is next.
    bool quoted_string(std::string& out) {
        ++pos_;
        while (!at_end()) {
            char c = text_[pos_++];
            if (c == '"') return true;
            if (c == '\\') {
                if (at_end()) break;
                c = text_[pos_++];
            }
            if (is_control(c)) return fail("control character in a quoted string");
            out += c;
        }
        return fail("unterminated quoted string");
    }

    std::string keyword() {
        const std::size_t start = pos_;
        while (!at_end() && is_keyword_char(peek())) ++pos_;
        return ascii_lower(text_.substr(start, pos_ - start));
    }

    std::string digits() {
        const std::size_t start = pos_;
        while (!at_end() && is_digit(peek())) ++pos_;
        return std::string(text_.substr(start, pos_ - start));
    }

    // A value: a quoted-string, or a run of bytes up to white space or a
    // separator (a token, a domain, local@domain, base64).
    bool value(std::string& out) {
        if (peek() == '"') {
            if (!quoted_string(out)) return false;
            if (peek() != '@') return true;  // "local part"@domain goes on
        }
        const std::size_t start = pos_;
        while (!at_end() && !ends_run(peek())) ++pos_;
        out += text_.substr(start, pos_ - start);
        if (out.empty()) return fail("expected a value");
        return true;
    }

  private:
    bool skip_comment() {
        int depth = 0;
        while (!at_end()) {
            const char c = text_[pos_++];
            if (c == '\\') {
                if (at_end()) break;
                if (is_control(text_[pos_])) return fail("control character in a comment");
                ++pos_;
            } else if (c == '(') {
                if (++depth > kMaxCommentDepth) return fail("comments nested too deep");
            } else if (c == ')') {
                if (--depth == 0) return true;
            } else if (is_control(c)) {
                return fail("control character in a comment");
            }
        }
        return fail("unterminated comment");
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::string error_;
};

// propspec / reasonspec / a bare extension, after a result; false on error.
bool read_property(Reader& in, AuthResult& result) {
    const std::string name = in.keyword();
    if (name.empty()) return in.fail("expected ptype.property=value");
    if (!in.skip_cfws()) return false;
    if (in.take('.')) {
        AuthProperty p;
        p.ptype = name;
        if (!in.skip_cfws()) return false;
        p.property = in.keyword();
        if (p.property.empty()) return in.fail("expected a property after \"" + name + ".\"");
        if (!in.skip_cfws()) return false;
        if (!in.take('=')) return in.fail("expected '=' after \"" + name + "." + p.property + "\"");
        if (!in.skip_cfws() || !in.value(p.value)) return false;
        result.properties.push_back(std::move(p));
        return true;
    }
    if (!in.take('=')) return in.fail("expected '.' or '=' after \"" + name + "\"");
    std::string value;
    if (!in.skip_cfws() || !in.value(value)) return false;
    if (name == "reason") result.reason = std::move(value);  // others: unknown extensions, skipped
    return true;
}

// methodspec [reasonspec] [propspec...], after the ';' and its CFWS; or
// "none" (no-result), which leaves result.result empty.
bool read_result(Reader& in, AuthResult& result) {
    result.method = in.keyword();
    if (result.method.empty()) return in.fail("expected a method");
    if (!in.skip_cfws()) return false;
    if (result.method == "none" && (in.at_end() || in.peek() == ';')) return true;  // no-result
    if (in.take('/')) {
        if (!in.skip_cfws()) return false;
        result.method_version = in.digits();
        if (result.method_version.empty()) return in.fail("expected a method version after '/'");
        if (!in.skip_cfws()) return false;
    }
    if (!in.take('=')) return in.fail("expected '=' after the method \"" + result.method + "\"");
    if (!in.skip_cfws()) return false;
    result.result = in.keyword();
    if (result.result.empty()) return in.fail("expected a result after \"" + result.method + "=\"");
    while (true) {
        if (!in.skip_cfws()) return false;
        if (in.at_end() || in.peek() == ';') return true;
        if (!read_property(in, result)) return false;
    }
}

}  // namespace

const std::string* AuthResult::property(std::string_view ptype, std::string_view name) const {
    for (const AuthProperty& p : properties)
        if (p.ptype == ptype && p.property == name) return &p.value;
    return nullptr;
}

AuthResultsParse parse_authentication_results(std::string_view value) {
    AuthResultsParse out;
    if (value.size() > max_auth_results_bytes) {
        out.error = "longer than " + std::to_string(max_auth_results_bytes) + " bytes";
        return out;
    }
    Reader in(value);
    AuthResults ar;
    bool separated = false;  // a ';' was seen: "none" or results follow
    bool good = in.skip_cfws() && in.value(ar.authserv_id) && in.skip_cfws();
    if (good && is_digit(in.peek())) {
        ar.version = in.digits();
        good = in.skip_cfws();
    }
    while (good && !in.at_end()) {
        if (!in.take(';')) {
            good = in.fail("expected ';'");
            break;
        }
        separated = true;
        if (!(good = in.skip_cfws()) || in.at_end() || in.peek() == ';') continue;  // a stray ';'
        AuthResult result;
        if (!(good = read_result(in, result))) break;
        if (result.result.empty()) continue;  // "none": no results
        ar.results.push_back(std::move(result));
    }
    if (good && !separated) good = in.fail("no results (not even \"none\") after the authserv-id");
    if (!good) {
        out.error = in.error();
        return out;
    }
    out.parsed = std::move(ar);
    return out;
}

}  // namespace rtm
