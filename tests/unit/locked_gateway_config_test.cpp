// locked_gateway_config_test.cpp — the keys of a locked gateway and of RT's
// own header fields, per RT server: strip_rt_headers, client_cert and
// client_key (together, https only, the key a secret file) and
// header_files (names checked; values read from secret files: mode & 077
// refused, an owner other than root or the service user refused, one
// trailing newline removed, CR, LF, NUL refused), each error with its
// file:line:col, key, path and reason, and never the secret itself.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config.h"

namespace rtm {
namespace {

constexpr char kSecret[] = "s3cr3t-value-never-shown";

class LockedGateway : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("rt-milter-locked-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string file(const std::string& name, const std::string& content, mode_t mode = 0600) {
        const std::string path = dir_ / name;
        std::ofstream(path, std::ios::binary) << content;
        ::chmod(path.c_str(), mode);
        return path;
    }
    // [rt] on https (lines 1-2), then `rest` from line 3.
    static std::string rt(const std::string& rest,
                          const std::string& url = "https://rt.example.com") {
        return "[rt]\nurl = \"" + url + "\"\n" + rest +
               "[[route]]\naddress = \"bugs@example.com\"\n";
    }
    static std::vector<std::string> errors(const std::string& text) {
        std::vector<std::string> out;
        for (const ConfigError& e : load_config_string(text, "t.toml").errors)
            out.push_back(e.to_string());
        return out;
    }
    // One error, exactly; and the secret nowhere in it.
    void expect_error(const std::string& text, const std::string& expected) {
        const std::vector<std::string> got = errors(text);
        ASSERT_EQ(got.size(), 1u) << ::testing::PrintToString(got);
        EXPECT_EQ(got[0], expected);
        EXPECT_EQ(got[0].find(kSecret), std::string::npos);
    }

    std::filesystem::path dir_;
};

TEST_F(LockedGateway, KeysAreReadAndHeaderValuesTrimmedOfOneNewline) {
    const std::string cert = file("client.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
    const std::string key = file("client.key", "-----BEGIN PRIVATE KEY-----\n", 0600);
    const std::string secret = file("gateway.secret", std::string(kSecret) + "\n", 0400);
    const std::string other = file("other.secret", "a\tb", 0600);
    LoadResult loaded =
        load_config_string(rt("client_cert = \"" + cert + "\"\nclient_key = \"" + key +
                              "\"\nheader_files = { \"X-RT-Gateway-Secret\" = \"" + secret +
                              "\", \"X-Other\" = \"" + other +
                              "\" }\n"
                              "strip_rt_headers = false\n"
                              "[servers.plain]\nurl = \"http://rt2.example.com\"\n"),
                           "t.toml");
    ASSERT_TRUE(loaded.config) << ::testing::PrintToString(errors(""));
    const RtServer& s = loaded.config->servers.at("rt");
    EXPECT_EQ(s.client_cert, cert);
    EXPECT_EQ(s.client_key, key);
    EXPECT_FALSE(s.strip_rt_headers);
    ASSERT_EQ(s.header_files.size(), 2u);
    for (const HeaderFile& h : s.header_files) {
        if (h.name == "X-RT-Gateway-Secret") {
            EXPECT_EQ(h.path, secret);
            EXPECT_EQ(h.value, kSecret);
        } else {
            EXPECT_EQ(h.name, "X-Other");
            EXPECT_EQ(h.value, "a\tb");
        }
    }
    const RtServer& plain = loaded.config->servers.at("plain");
    EXPECT_TRUE(plain.strip_rt_headers);  // the default
    EXPECT_TRUE(plain.client_cert.empty());
    EXPECT_TRUE(plain.header_files.empty());
}

TEST_F(LockedGateway, SecretFileOthersCanReadOrWriteIsRefused) {
    for (mode_t mode : {0640, 0604, 0620, 0602, 0660}) {
        const std::string secret = file("gateway.secret", kSecret, mode);
        char shown[8];
        std::snprintf(shown, sizeof shown, "%04o", static_cast<unsigned>(mode));
        expect_error(rt("header_files = { \"X-RT-Gateway-Secret\" = \"" + secret + "\" }\n"),
                     "t.toml:3:42: rt.header_files.X-RT-Gateway-Secret: " + secret + " has mode " +
                         shown +
                         ": others than its owner may read or write it; chmod 600 it (or 400)");
    }
}

TEST_F(LockedGateway, SecretFileOfAnotherOwnerIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
    const std::string secret = file("gateway.secret", kSecret);
    ASSERT_EQ(::chown(secret.c_str(), 65534, 65534), 0);
    const struct passwd* nobody = ::getpwuid(65534);
    const std::string owner = nobody ? nobody->pw_name : "uid 65534";
    expect_error(rt("header_files = { \"X-RT-Gateway-Secret\" = \"" + secret + "\" }\n"),
                 "t.toml:3:42: rt.header_files.X-RT-Gateway-Secret: " + secret + " is owned by " +
                     owner + ", not by root: another user could change the secret; chown it");
    // The service user named in `user` may own it.
    if (nobody) {
        LoadResult loaded = load_config_string(
            "user = \"" + owner + "\"\n" + rt("header_files = { \"X-A\" = \"" + secret + "\" }\n"),
            "t.toml");
        EXPECT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    }
}

TEST_F(LockedGateway, HeaderValuesMustBeOneLine) {
    const std::string empty = "a header value is one line (one newline at its end is removed)";
    struct Case {
        std::string content, what;
    } cases[] = {
        {std::string(kSecret) + "\r\n", "contains a carriage return (CR): " + empty},
        {std::string(kSecret) + "\nmore\n",
         "contains a line feed (LF) besides the one at its end: " + empty},
        {std::string(kSecret) + "\n\n",
         "contains a line feed (LF) besides the one at its end: " + empty},
        {std::string(kSecret) + std::string(1, '\0') + "x", "contains a NUL byte: " + empty},
        {std::string(kSecret) + "\x1b", "contains a control character: " + empty},
    };
    for (const Case& c : cases) {
        const std::string secret = file("gateway.secret", c.content);
        expect_error(rt("header_files = { \"X-RT-Gateway-Secret\" = \"" + secret + "\" }\n"),
                     "t.toml:3:42: rt.header_files.X-RT-Gateway-Secret: " + secret + " " + c.what);
    }
    const std::string nothing = file("empty.secret", "\n");
    expect_error(rt("header_files = { \"X-A\" = \"" + nothing + "\" }\n"),
                 "t.toml:3:26: rt.header_files.X-A: " + nothing +
                     " is empty: it must hold the header's value");
    expect_error(rt("header_files = { \"X-A\" = \"" + (dir_ / "missing").string() + "\" }\n"),
                 "t.toml:3:26: rt.header_files.X-A: cannot read " + (dir_ / "missing").string() +
                     ": No such file or directory");
    expect_error(rt("header_files = { \"X-A\" = \"secret.txt\" }\n"),
                 "t.toml:3:26: rt.header_files.X-A: must be an absolute path, got \"secret.txt\"");
}

TEST_F(LockedGateway, HeaderNamesAreChecked) {
    const std::string secret = file("gateway.secret", kSecret);
    expect_error(rt("header_files = { \"X Secret\" = \"" + secret + "\" }\n"),
                 "t.toml:3:18: rt.header_files.\"X Secret\": a header name is letters, digits and "
                 "!#$%&'*+-.^_`|~ only (no space, colon or control character)");
    expect_error(rt("header_files = { \"X-Secret:\" = \"" + secret + "\" }\n"),
                 "t.toml:3:18: rt.header_files.\"X-Secret:\": a header name is letters, digits and "
                 "!#$%&'*+-.^_`|~ only (no space, colon or control character)");
    expect_error(rt("header_files = { \"Host\" = \"" + secret + "\" }\n"),
                 "t.toml:3:18: rt.header_files.Host: Host is set by the HTTP client itself or "
                 "changes how the "
                 "request is framed; choose a header of your own, e.g. X-RT-Gateway-Secret");
    expect_error(
        rt("header_files = { \"X-A\" = \"" + secret + "\", \"x-a\" = \"" + secret + "\" }\n"),
        "t.toml:3:" + std::to_string(18 + 9 + secret.size() + 3) +
            ": rt.header_files.x-a: the same header twice (names compare ignoring case)");
    expect_error(rt("header_files = \"" + secret + "\"\n"),
                 "t.toml:3:16: rt.header_files: must be a table of header names and files, e.g. { "
                 "\"X-RT-Gateway-Secret\" = \"/etc/rt-milter/gateway.secret\" }, got a string (\"" +
                     secret + "\")");
}

TEST_F(LockedGateway, ClientCertificateAndKey) {
    const std::string cert = file("client.pem", "cert", 0644);
    const std::string key = file("client.key", "key", 0600);
    expect_error(
        rt("client_cert = \"" + cert + "\"\n"),
        "t.toml:3:15: rt.client_cert: client_cert and client_key go together: set both (the "
        "certificate and its private key), or neither");
    expect_error(
        rt("client_key = \"" + key + "\"\n"),
        "t.toml:3:14: rt.client_key: client_cert and client_key go together: set both (the "
        "certificate and its private key), or neither");
    const std::string open_key = file("open.key", "key", 0644);
    expect_error(
        rt("client_cert = \"" + cert + "\"\nclient_key = \"" + open_key + "\"\n"),
        "t.toml:4:14: rt.client_key: " + open_key +
            " has mode 0644: others than its owner may read or write it; chmod 600 it (or 400)");
    expect_error(rt("client_cert = \"" + (dir_ / "none.pem").string() + "\"\nclient_key = \"" +
                    key + "\"\n"),
                 "t.toml:3:15: rt.client_cert: cannot read \"" + (dir_ / "none.pem").string() +
                     "\": No such file or directory");
}

TEST_F(LockedGateway, CredentialsNeedHttps) {
    const std::string cert = file("client.pem", "cert", 0644);
    const std::string key = file("client.key", "key", 0600);
    const std::string secret = file("gateway.secret", kSecret);
    const std::vector<std::string> got = errors(
        "[rt]\nurl = \"https://rt.example.com\"\n[servers.old]\nurl = "
        "\"HTTP://rt-old.example.com\"\n"
        "client_cert = \"" +
        cert + "\"\nclient_key = \"" + key + "\"\nheader_files = { \"X-A\" = \"" + secret +
        "\" }\n[[route]]\naddress = \"bugs@example.com\"\n");
    EXPECT_EQ(got,
              (std::vector<std::string>{
                  "t.toml:5:15: servers.old.client_cert: needs an https:// url: over "
                  "\"HTTP://rt-old.example.com\" the credentials would travel in clear text",
                  "t.toml:7:16: servers.old.header_files: needs an https:// url: over "
                  "\"HTTP://rt-old.example.com\" the credentials would travel in clear text"}));
}

// rest2_token_file (issue 12): a secret file as header_files, its value
// read (one trailing newline removed), https only but for an RT on this
// host; the token in no error.
TEST_F(LockedGateway, Rest2TokenIsReadFromASecretFile) {
    const std::string token = file("rest2.token", std::string(kSecret) + "\n", 0600);
    LoadResult loaded = load_config_string(rt("rest2_token_file = \"" + token + "\"\n"), "t.toml");
    ASSERT_TRUE(loaded.config) << ::testing::PrintToString(errors(""));
    EXPECT_EQ(loaded.config->servers.at("rt").rest2_token_file, token);
    EXPECT_EQ(loaded.config->servers.at("rt").rest2_token, kSecret);
    for (const char* url : {"http://localhost:8080", "http://127.0.0.1", "http://[::1]:80/rt"}) {
        LoadResult local =
            load_config_string(rt("rest2_token_file = \"" + token + "\"\n", url), "t.toml");
        EXPECT_TRUE(local.config) << url;
    }
}

TEST_F(LockedGateway, Rest2TokenFileOthersCanReadIsRefused) {
    const std::string token = file("rest2.token", kSecret, 0644);
    expect_error(
        rt("rest2_token_file = \"" + token + "\"\n"),
        "t.toml:3:20: rt.rest2_token_file: " + token +
            " has mode 0644: others than its owner may read or write it; chmod 600 it (or 400)");
    expect_error(
        rt("[servers.b]\nurl = \"https://rt2.example.com\"\nrest2_token_file = \"" + token +
           "\"\n"),
        "t.toml:5:20: servers.b.rest2_token_file: " + token +
            " has mode 0644: others than its owner may read or write it; chmod 600 it (or 400)");
}

TEST_F(LockedGateway, Rest2TokenNeedsHttpsOffThisHost) {
    const std::string token = file("rest2.token", kSecret, 0600);
    expect_error(
        rt("rest2_token_file = \"" + token + "\"\n", "http://127.evil.example"),
        "t.toml:3:20: rt.rest2_token_file: needs an https:// url (or an RT on this host): over "
        "\"http://127.evil.example\" the token would travel in clear text");
}

}  // namespace
}  // namespace rtm
