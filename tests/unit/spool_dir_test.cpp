// spool_dir_test.cpp — open_spool_dir, make_journal_dir and
// remove_stale_spool_files (issues 9 and 10): a symbolic link anywhere in
// spool_dir's path and a directory the service user does not own are
// refused with a line naming spool_dir and the reason, and the exit status
// that classifies it; a missing last component is created and given to the
// service user through its fd (the journal's 0750); --check-config's mode
// makes nothing and meets the same refusals; stale rt-milter.* files go,
// links and other names stay. The ownership cases need root (the tests run
// so).
#include <gtest/gtest.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "privileges.h"
#include "spool_dir.h"

namespace rtm {
namespace {

class SpoolDir : public testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/rtm-spooldir-test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        std::string error;
        auto self = resolve_service_user("", error);
        ASSERT_TRUE(self) << error;
        self_ = *self;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // A service user other than the one running the test, as root starts it.
    std::optional<ServiceUser> nobody() {
        if (geteuid() != 0) return std::nullopt;
        std::string error;
        return resolve_service_user("nobody", error);
    }

    StartStatus open(const std::string& path, const ServiceUser& user) {
        UniqueFd fd;
        StartStatus s = open_spool_dir(path, user, fd);
        if (s) {
            EXPECT_TRUE(fd.valid());
        }
        return s;
    }

    std::string dir_;
    ServiceUser self_;
};

TEST_F(SpoolDir, ExistingOwnDirectoryOpens) {
    EXPECT_TRUE(open(dir_, self_)) << dir_;
}

TEST_F(SpoolDir, MissingLastComponentIsCreatedPrivate) {
    const std::string spool = dir_ + "/spool";
    ASSERT_TRUE(open(spool, self_));
    struct stat st {};
    ASSERT_EQ(lstat(spool.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 077, 0u);
    EXPECT_EQ(st.st_uid, self_.uid);
}

TEST_F(SpoolDir, CreatedForTheServiceUserAsRoot) {
    auto user = nobody();
    if (!user) GTEST_SKIP() << "needs root";
    chmod(dir_.c_str(), 0755);  // root's alone: root creates, then fchown
    const std::string spool = dir_ + "/spool";
    ASSERT_TRUE(open(spool, *user));
    struct stat st {};
    ASSERT_EQ(lstat(spool.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, user->uid);
    EXPECT_EQ(st.st_gid, user->gid);
    // In a directory the user can write, the user makes it: same result.
    ASSERT_EQ(chown(dir_.c_str(), user->uid, user->gid), 0);
    const std::string spool2 = dir_ + "/spool2";
    ASSERT_TRUE(open(spool2, *user));
    ASSERT_EQ(lstat(spool2.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, user->uid);
    EXPECT_EQ(geteuid(), 0u);  // ActingAs gave root back
}

TEST_F(SpoolDir, SymbolicLinkAsLastComponentIsRefused) {
    ASSERT_EQ(mkdir((dir_ + "/real").c_str(), 0700), 0);
    ASSERT_EQ(symlink((dir_ + "/real").c_str(), (dir_ + "/spool").c_str()), 0);
    StartStatus s = open(dir_ + "/spool", self_);
    ASSERT_FALSE(s);
    EXPECT_EQ(
        s.error(),
        "spool_dir " + dir_ + "/spool: " + dir_ +
            "/spool is a symbolic link; rt-milter follows none there, name the real directory");
    EXPECT_EQ(s.exit_status(), 78);
}

TEST_F(SpoolDir, SymbolicLinkInThePathIsRefused) {
    ASSERT_EQ(mkdir((dir_ + "/real").c_str(), 0700), 0);
    ASSERT_EQ(mkdir((dir_ + "/real/spool").c_str(), 0700), 0);
    ASSERT_EQ(symlink((dir_ + "/real").c_str(), (dir_ + "/link").c_str()), 0);
    StartStatus s = open(dir_ + "/link/spool", self_);
    ASSERT_FALSE(s);
    EXPECT_EQ(
        s.error(),
        "spool_dir " + dir_ + "/link/spool: " + dir_ +
            "/link is a symbolic link; rt-milter follows none there, name the real directory");
    EXPECT_EQ(s.exit_status(), 78);
}

TEST_F(SpoolDir, MissingParentIsNotCreated) {
    StartStatus s = open(dir_ + "/no/spool", self_);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "spool_dir " + dir_ + "/no/spool: " + dir_ + "/no does not exist");
    EXPECT_EQ(s.exit_status(), 73);
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/no"));
}

TEST_F(SpoolDir, DirectoryOfAnotherUserIsRefused) {
    auto user = nobody();
    if (!user) GTEST_SKIP() << "needs root";
    StartStatus s = open(dir_, *user);  // root's directory, service user nobody
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "spool_dir " + dir_ +
                             " is owned by root, not by nobody, the user rt-milter runs as: " +
                             "give it to nobody or choose another spool_dir");
    EXPECT_EQ(s.exit_status(), 78);
}

TEST_F(SpoolDir, FileIsRefused) {
    std::ofstream(dir_ + "/file") << "x";
    StartStatus s = open(dir_ + "/file", self_);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "spool_dir " + dir_ + "/file: " + dir_ + "/file is not a directory");
    EXPECT_EQ(s.exit_status(), 78);
}

TEST_F(SpoolDir, StaleFilesGoLinksAndOthersStay) {
    std::ofstream(dir_ + "/rt-milter.abc123") << "left by a crash";
    std::ofstream(dir_ + "/other") << "not ours";
    std::ofstream(dir_ + "/outside") << "a link's target";
    ASSERT_EQ(symlink((dir_ + "/outside").c_str(), (dir_ + "/rt-milter.link").c_str()), 0);
    UniqueFd fd;
    ASSERT_TRUE(open_spool_dir(dir_, self_, fd));
    remove_stale_spool_files(fd.get(), dir_);
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/rt-milter.abc123"));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/other"));
    EXPECT_TRUE(std::filesystem::is_symlink(dir_ + "/rt-milter.link"));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/outside"));
}

TEST_F(SpoolDir, CheckMakesNothingAndSaysWhoWould) {
    DirState state;
    ASSERT_TRUE(open_spool_dir(dir_ + "/spool", self_, DirAction::Check, state));
    EXPECT_FALSE(state.fd.valid());
    EXPECT_EQ(state.made_by, geteuid() == 0 ? "root" : self_.name);  // mkdtemp's 0700 directory
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/spool"));
}

TEST_F(SpoolDir, CheckSaysWhatCreateWouldMeet) {
    auto user = nobody();
    if (!user) GTEST_SKIP() << "needs root";
    // A directory nobody can write, not root's alone: nobody would make it, and cannot.
    ASSERT_EQ(chmod(dir_.c_str(), 0775), 0);
    DirState state;
    const StartStatus check = open_spool_dir(dir_ + "/spool", *user, DirAction::Check, state);
    ASSERT_FALSE(check);
    const StartStatus create = open_spool_dir(dir_ + "/spool", *user, DirAction::Create, state);
    ASSERT_FALSE(create);
    EXPECT_EQ(check.error(), create.error());
    EXPECT_EQ(create.error(), "spool_dir " + dir_ + "/spool: cannot create directory " + dir_ +
                                  "/spool as user nobody: Permission denied");
    EXPECT_EQ(create.exit_status(), 73);
}

// The journal's directory: made 0750 for the service user when missing, left
// alone when it exists (whoever owns it), refused when it is not one.
TEST_F(SpoolDir, JournalDirectoryIsMadeForTheUser) {
    auto user = nobody();
    if (!user) GTEST_SKIP() << "needs root";
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);  // root's alone: root makes it, then fchown
    const std::string journal = dir_ + "/lib/journal.sqlite";
    DirState checked;
    ASSERT_TRUE(make_journal_dir(journal, *user, DirAction::Check, checked));
    EXPECT_EQ(checked.made_by, "root");
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/lib"));
    DirState made;
    ASSERT_TRUE(make_journal_dir(journal, *user, DirAction::Create, made));
    struct stat st {};
    ASSERT_EQ(lstat((dir_ + "/lib").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0750u);
    EXPECT_EQ(st.st_uid, user->uid);
    EXPECT_EQ(st.st_gid, user->gid);
    // There now: left as it is, whoever owns it.
    ASSERT_EQ(chown((dir_ + "/lib").c_str(), 0, 0), 0);
    DirState again;
    EXPECT_TRUE(make_journal_dir(journal, *user, DirAction::Create, again));
    ASSERT_EQ(lstat((dir_ + "/lib").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(SpoolDir, JournalDirectoryProblemsNameTheJournal) {
    const std::string journal = dir_ + "/no/lib/journal.sqlite";
    DirState state;
    StartStatus s = make_journal_dir(journal, self_, DirAction::Create, state);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "journal " + journal + ": " + dir_ + "/no does not exist");
    EXPECT_EQ(s.exit_status(), 73);
    std::ofstream(dir_ + "/file") << "x";
    s = make_journal_dir(dir_ + "/file/journal.sqlite", self_, DirAction::Create, state);
    EXPECT_EQ(s.error(),
              "journal " + dir_ + "/file/journal.sqlite: " + dir_ + "/file is not a directory");
    EXPECT_EQ(s.exit_status(), 78);
}

TEST(ActingAs, LendsTheUserAndGivesRootBack) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    std::string error;
    auto user = resolve_service_user("nobody", error);
    ASSERT_TRUE(user) << error;
    const gid_t egid = getegid();
    {
        ActingAs acting(*user, user->gid);
        ASSERT_TRUE(acting.status()) << acting.status().error();
        EXPECT_EQ(geteuid(), user->uid);
        EXPECT_EQ(getegid(), user->gid);
        EXPECT_EQ(getuid(), 0u);  // the real uid stays: root can come back
    }
    EXPECT_EQ(geteuid(), 0u);
    EXPECT_EQ(getegid(), egid);
}

TEST(UserSetting, RootOnlyOnPurpose) {
    EXPECT_TRUE(check_user_setting("", StartedAs::Root).fatal);
    EXPECT_FALSE(check_user_setting("", StartedAs::Unknown).fatal);
    EXPECT_NE(check_user_setting("", StartedAs::Unknown).line, "");
    EXPECT_EQ(check_user_setting("", StartedAs::NotRoot).line, "");
    EXPECT_FALSE(check_user_setting("root", StartedAs::Root).fatal);
    EXPECT_NE(check_user_setting("root", StartedAs::Root).line, "");
    EXPECT_EQ(check_user_setting("rt-milter", StartedAs::Root).line, "");
}

}  // namespace
}  // namespace rtm
