#include "dfrp/core/file_system.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "dfrp/core/fault_injection_fs.h"

namespace dfrp::core {
namespace {

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dfrp-fs-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)system(("rm -rf " + dir_).c_str()); }
  FileSystem* fs_ = DefaultFileSystem();
  std::string dir_;
};

TEST_F(FileSystemTest, WriteReadTruncate) {
  std::string p = JoinPath(dir_, "f");
  auto w = fs_->OpenForWrite(p);
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE((*w)->WriteAt(5, "world").ok());
  ASSERT_TRUE((*w)->WriteAt(0, "hello").ok());
  ASSERT_TRUE((*w)->Sync().ok());
  EXPECT_EQ(*(*w)->Size(), 10u);
  auto r = fs_->OpenForRead(p);
  ASSERT_TRUE(r.has_value());
  char buf[16];
  ASSERT_TRUE((*r)->ReadExact(0, 10, buf).ok());
  EXPECT_EQ(std::string(buf, 10), "helloworld");
  Status early = (*r)->ReadExact(5, 6, buf);
  EXPECT_TRUE(early.IsCorruption()) << early.ToString();
  ASSERT_TRUE((*w)->Truncate(3).ok());
  EXPECT_EQ(*fs_->FileSize(p), 3u);
}

TEST_F(FileSystemTest, CreateNewRefusesExisting) {
  std::string p = JoinPath(dir_, "once");
  ASSERT_TRUE(fs_->CreateNew(p).has_value());
  EXPECT_FALSE(fs_->CreateNew(p).has_value());
}

TEST_F(FileSystemTest, AtomicWriteReplacesWholeFileWithMode) {
  std::string p = JoinPath(dir_, "token");
  ASSERT_TRUE(WriteFileAtomic(fs_, p, "first", true).ok());
  ASSERT_TRUE(WriteFileAtomic(fs_, p, "second", true).ok());
  EXPECT_EQ(*ReadWholeFile(fs_, p), "second");
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto names = fs_->ListDir(dir_);
  ASSERT_TRUE(names.has_value());
  EXPECT_EQ(names->size(), 1u);  // no temporary file left behind
}

TEST_F(FileSystemTest, LockIsExclusiveUntilReleased) {
  std::string p = JoinPath(dir_, "LOCK");
  auto a = fs_->TryLock(p);
  ASSERT_TRUE(a.has_value());
  auto b = fs_->TryLock(p);  // flock locks are per open file description
  ASSERT_FALSE(b.has_value());
  EXPECT_TRUE(b.error().IsBusy());
  a->reset();
  EXPECT_TRUE(fs_->TryLock(p).has_value());
}

TEST_F(FileSystemTest, MissingFileIsNotFound) {
  auto r = fs_->OpenForRead(JoinPath(dir_, "nope"));
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsNotFound());
}

// ReadFiles (io_uring groups where the kernel allows it) must give what ReadFileUpTo gives,
// file by file: over several groups, empty files, a limit below the size, a missing file and
// a folder among them, directly and through the fault-injecting wrapper.
TEST_F(FileSystemTest, ReadFilesGivesWhatReadFileUpToGivesForEachFile) {
  FaultInjectingFileSystem faulty(fs_);
  constexpr size_t kFiles = 150;
  std::vector<std::string> paths(kFiles);
  for (size_t i = 0; i < kFiles; ++i) {
    // Runs of files in one folder (opened relative to it), and folders that change.
    const std::string folder = JoinPath(dir_, "d" + std::to_string(i / 40 % 3));
    ASSERT_TRUE(fs_->CreateDir(folder).ok());
    paths[i] = JoinPath(folder, "f" + std::to_string(i));
    std::string bytes((i * 37) % 9000, static_cast<char>('a' + i % 26));
    if (i == 70) continue;  // never created
    if (i == 71) {          // a folder
      ASSERT_TRUE(fs_->CreateDir(paths[i]).ok());
      continue;
    }
    auto w = fs_->OpenForWrite(paths[i]);
    ASSERT_TRUE(w.has_value() && (*w)->WriteAt(0, bytes).ok());
  }
  for (FileSystem* fs : {fs_, static_cast<FileSystem*>(&faulty)}) {
    std::vector<std::string> bufs(kFiles);
    std::vector<FileRead> reads(kFiles);
    for (size_t i = 0; i < kFiles; ++i) {
      reads[i].path = &paths[i];
      reads[i].limit = i % 5 == 0 ? 100 : 9001;
      bufs[i].assign(reads[i].limit, '\0');
      reads[i].dst = bufs[i].data();
    }
    fs->ReadFiles(reads);
    for (size_t i = 0; i < kFiles; ++i) {
      std::string want;
      Status st = fs_->ReadFileUpTo(paths[i], reads[i].limit, &want);
      ASSERT_EQ(reads[i].status.ok(), st.ok()) << i << " " << reads[i].status.ToString();
      if (!st.ok()) {
        EXPECT_EQ(reads[i].status.code(), st.code()) << i;
        continue;
      }
      EXPECT_EQ(std::string(reads[i].dst, reads[i].got), want) << i;
    }
    EXPECT_TRUE(reads[70].status.IsNotFound()) << reads[70].status.ToString();
  }
}

TEST_F(FileSystemTest, FaultyFsFailsTheNthWriteOnceAndGoesOn) {
  FaultInjectingFileSystem faulty(fs_);
  auto w = faulty.OpenForWrite(JoinPath(dir_, "f"), false);
  ASSERT_TRUE(w.has_value());
  faulty.FailNth(FaultInjectingFileSystem::Op::kWrite, 2, Status::NoSpace("simulated ENOSPC"));
  EXPECT_TRUE((*w)->WriteAt(0, "aa").ok());
  Status second = (*w)->WriteAt(2, "bb");
  EXPECT_TRUE(second.IsNoSpace()) << second.ToString();
  EXPECT_TRUE((*w)->WriteAt(2, "cc").ok());  // one failure, then the disk works again
  EXPECT_FALSE(faulty.crashed());
  EXPECT_EQ(*ReadWholeFile(fs_, JoinPath(dir_, "f")), "aacc");
  EXPECT_EQ(faulty.ops_seen(FaultInjectingFileSystem::Op::kWrite), 3);
}

TEST_F(FileSystemTest, FaultyFsFailsTheNthSyncWithEio) {
  FaultInjectingFileSystem faulty(fs_);
  auto w = faulty.OpenForWrite(JoinPath(dir_, "f"), false);
  ASSERT_TRUE(w.has_value());
  faulty.FailNth(FaultInjectingFileSystem::Op::kSync, 1, Status::IOError("simulated EIO"));
  ASSERT_TRUE((*w)->WriteAt(0, "data").ok());
  Status s = (*w)->Sync();
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  // The failed sync made nothing durable: a power cut now leaves an empty file.
  faulty.CrashAtSync(1);
  EXPECT_FALSE((*w)->Sync().ok());
  ASSERT_TRUE(faulty.DropUnsyncedData().ok());
  EXPECT_FALSE(fs_->Exists(JoinPath(dir_, "f")));  // its folder entry was never synced either
}

TEST_F(FileSystemTest, FaultyFsTearsAWriteAndGoesDown) {
  FaultInjectingFileSystem faulty(fs_);
  const std::string p = JoinPath(dir_, "f");
  auto w = faulty.OpenForWrite(p, false);
  ASSERT_TRUE(w.has_value());
  ASSERT_TRUE((*w)->WriteAt(0, "0123").ok());
  faulty.TearNthWrite(1);
  EXPECT_FALSE((*w)->WriteAt(4, "abcdefgh").ok());
  EXPECT_TRUE(faulty.crashed());
  EXPECT_EQ(*ReadWholeFile(fs_, p), "0123abcd");  // half of it reached the file
  EXPECT_FALSE((*w)->WriteAt(0, "x").ok());       // and the machine is down
}

TEST_F(FileSystemTest, FaultyFsUndoesARenameWhoseFolderWasNotSynced) {
  FaultInjectingFileSystem faulty(fs_);
  const std::string p = JoinPath(dir_, "manifest");
  ASSERT_TRUE(WriteFileAtomic(&faulty, p, "old").ok());
  // A new version renamed into place, but the power goes at the folder sync.
  auto tmp = faulty.CreateNew(p + ".tmp", false);
  ASSERT_TRUE(tmp.has_value());
  ASSERT_TRUE((*tmp)->WriteAt(0, "new").ok());
  ASSERT_TRUE((*tmp)->Sync().ok());
  ASSERT_TRUE(faulty.Rename(p + ".tmp", p).ok());
  EXPECT_EQ(*ReadWholeFile(fs_, p), "new");
  faulty.CrashAtSync(1);
  EXPECT_FALSE(faulty.SyncDir(dir_).ok());
  ASSERT_TRUE(faulty.DropUnsyncedData().ok());
  EXPECT_EQ(*ReadWholeFile(fs_, p), "old");
  EXPECT_FALSE(fs_->Exists(p + ".tmp"));
  // With the folder synced, the rename stays.
  ASSERT_TRUE(WriteFileAtomic(&faulty, p, "newer").ok());
  ASSERT_TRUE(faulty.DropUnsyncedData().ok());
  EXPECT_EQ(*ReadWholeFile(fs_, p), "newer");
}

TEST_F(FileSystemTest, TypeOfTellsFilesFoldersLinksDevicesAndFifos) {
  const std::string file = JoinPath(dir_, "f"), fifo = JoinPath(dir_, "fifo");
  const std::string link = JoinPath(dir_, "link"), dangling = JoinPath(dir_, "dangling");
  ASSERT_TRUE(WriteFileAtomic(fs_, file, "x").ok());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_EQ(symlink(file.c_str(), link.c_str()), 0);
  ASSERT_EQ(symlink(JoinPath(dir_, "none").c_str(), dangling.c_str()), 0);
  EXPECT_EQ(*fs_->TypeOf(file, true), FileType::kRegular);
  EXPECT_EQ(*fs_->TypeOf(dir_, false), FileType::kDirectory);
  EXPECT_EQ(*fs_->TypeOf(fifo, true), FileType::kFifo);
  EXPECT_EQ(*fs_->TypeOf("/dev/null", true), FileType::kCharDevice);
  EXPECT_EQ(*fs_->TypeOf(link, false), FileType::kSymlink);
  EXPECT_EQ(*fs_->TypeOf(link, true), FileType::kRegular);
  EXPECT_EQ(*fs_->TypeOf(dangling, false), FileType::kSymlink);
  EXPECT_TRUE(fs_->TypeOf(dangling, true).error().IsNotFound());
  EXPECT_TRUE(fs_->TypeOf(JoinPath(dir_, "none"), false).error().IsNotFound());
  FaultInjectingFileSystem faulty(fs_);
  EXPECT_EQ(*faulty.TypeOf(fifo, false), FileType::kFifo);
}

TEST_F(FileSystemTest, OutputStreamWritesToADeviceAndAFifoAndCreatesNothing) {
  auto null = fs_->OpenOutputStream("/dev/null");
  ASSERT_TRUE(null.has_value()) << null.error().ToString();
  EXPECT_TRUE((*null)->Write(std::string(1 << 20, 'a')).ok());
  EXPECT_TRUE((*null)->Close().ok());

  const std::string fifo = JoinPath(dir_, "fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    int fd = ::open(fifo.c_str(), O_RDONLY);
    char buf[65536];
    for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof(buf))) > 0;) got.append(buf, n);
    if (fd >= 0) ::close(fd);
  });
  auto out = fs_->OpenOutputStream(fifo);  // waits for the reader
  ASSERT_TRUE(out.has_value()) << out.error().ToString();
  const std::string data(200000, 'z');  // more than a pipe holds: the writes loop
  EXPECT_TRUE((*out)->Write(data.substr(0, 70000)).ok());
  EXPECT_TRUE((*out)->Write(data.substr(70000)).ok());
  EXPECT_TRUE((*out)->Close().ok());
  reader.join();
  EXPECT_EQ(got, data);

  const std::string none = JoinPath(dir_, "none");
  auto missing = fs_->OpenOutputStream(none);
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_FALSE(fs_->Exists(none)) << "an output stream never creates a file";
}

TEST_F(FileSystemTest, OutputStreamFromFdDoesNotOwnTheDescriptor) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  {
    auto out = OutputStreamFromFd(fds[1], "standard output");
    EXPECT_EQ(out->path(), "standard output");
    EXPECT_TRUE(out->Write("hello").ok());
    EXPECT_TRUE(out->Close().ok());
  }
  ASSERT_EQ(::write(fds[1], "!", 1), 1);  // still open
  ::close(fds[1]);
  char buf[16];
  EXPECT_EQ(::read(fds[0], buf, sizeof(buf)), 6);
  EXPECT_EQ(std::string(buf, 6), "hello!");
  ::close(fds[0]);
}

TEST_F(FileSystemTest, FaultyFsFailsTheNthStreamWrite) {
  FaultInjectingFileSystem faulty(fs_);
  auto out = faulty.OpenOutputStream("/dev/null");
  ASSERT_TRUE(out.has_value());
  faulty.FailNth(FaultInjectingFileSystem::Op::kWrite, 2, Status::IOError("simulated EIO"));
  EXPECT_TRUE((*out)->Write("a").ok());
  EXPECT_EQ((*out)->Write("b").code(), Status::Code::kIOError);
  EXPECT_TRUE((*out)->Write("c").ok());
}

TEST_F(FileSystemTest, IsLockedProbesWithoutCreatingOrTakingTheLock) {
  const std::string p = JoinPath(dir_, "dfrpd.lock");
  EXPECT_FALSE(*fs_->IsLocked(p));
  EXPECT_FALSE(fs_->Exists(p)) << "a probe never creates the lock file";
  auto held = fs_->TryLock(p);
  ASSERT_TRUE(held.has_value());
  EXPECT_TRUE(*fs_->IsLocked(p));
  held->reset();
  EXPECT_FALSE(*fs_->IsLocked(p));
  EXPECT_TRUE(fs_->TryLock(p).has_value()) << "the probe released what it took";
}

TEST_F(FileSystemTest, RenameNoReplaceLeavesAnExistingTargetAlone) {
  const std::string a = JoinPath(dir_, "a"), b = JoinPath(dir_, "b"), c = JoinPath(dir_, "c");
  ASSERT_TRUE(WriteFileAtomic(fs_, a, "from a").ok());
  ASSERT_TRUE(WriteFileAtomic(fs_, b, "from b").ok());
  Status s = fs_->RenameNoReplace(a, b);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(std::strerror(EEXIST)), std::string::npos) << s.ToString();
  EXPECT_EQ(*ReadWholeFile(fs_, a), "from a");
  EXPECT_EQ(*ReadWholeFile(fs_, b), "from b");
  ASSERT_TRUE(fs_->RenameNoReplace(a, c).ok());
  EXPECT_FALSE(fs_->Exists(a));
  EXPECT_EQ(*ReadWholeFile(fs_, c), "from a");
}

TEST_F(FileSystemTest, WriteNewFileAtomicNeverReplaces) {
  const std::string p = JoinPath(dir_, "wallet");
  ASSERT_TRUE(WriteNewFileAtomic(fs_, p, "first", true).ok());
  EXPECT_FALSE(WriteNewFileAtomic(fs_, p, "second", true).ok());
  EXPECT_EQ(*ReadWholeFile(fs_, p), "first");
  EXPECT_EQ(fs_->ListDir(dir_)->size(), 1u);  // the temporary file was removed
}

TEST_F(FileSystemTest, FaultyFsUndoesANoReplaceRenameWhoseFolderWasNotSynced) {
  FaultInjectingFileSystem faulty(fs_);
  const std::string p = JoinPath(dir_, "wallet");
  auto tmp = faulty.CreateNew(p + ".tmp", false);
  ASSERT_TRUE(tmp.has_value());
  ASSERT_TRUE((*tmp)->WriteAt(0, "new").ok());
  ASSERT_TRUE((*tmp)->Sync().ok());
  ASSERT_TRUE(faulty.RenameNoReplace(p + ".tmp", p).ok());
  ASSERT_TRUE(WriteFileAtomic(fs_, p + ".other", "other").ok());
  EXPECT_FALSE(faulty.RenameNoReplace(p + ".other", p).ok());  // an existing name stays
  EXPECT_EQ(*ReadWholeFile(fs_, p), "new");
  ASSERT_TRUE(faulty.DropUnsyncedData().ok());
  EXPECT_FALSE(fs_->Exists(p));
  ASSERT_TRUE(WriteNewFileAtomic(&faulty, p, "kept").ok());
  ASSERT_TRUE(faulty.DropUnsyncedData().ok());
  EXPECT_EQ(*ReadWholeFile(fs_, p), "kept");
}

TEST(PathTest, NormalizeIsLexical) {
  EXPECT_EQ(NormalizePath("/a/b/../c/"), "/a/c");
  EXPECT_EQ(NormalizePath("/a/nonexist/../d0"), "/a/d0");
  EXPECT_EQ(NormalizePath("//a/./b//"), "/a/b");
  EXPECT_EQ(NormalizePath("/.."), "/");
  EXPECT_EQ(NormalizePath("/"), "/");
}

TEST_F(FileSystemTest, IdentityTellsTheSameFolderApartFromACopy) {
  ASSERT_TRUE(fs_->CreateDir(JoinPath(dir_, "a")).ok());
  ASSERT_TRUE(fs_->CreateDir(JoinPath(dir_, "b")).ok());
  ASSERT_EQ(symlink(JoinPath(dir_, "a").c_str(), JoinPath(dir_, "link").c_str()), 0);
  EXPECT_EQ(*fs_->FileIdentity(JoinPath(dir_, "a")), *fs_->FileIdentity(JoinPath(dir_, "link")));
  EXPECT_EQ(*fs_->FileIdentity(JoinPath(dir_, "a")), *fs_->FileIdentity(dir_ + "/b/../a/"));
  EXPECT_NE(*fs_->FileIdentity(JoinPath(dir_, "a")), *fs_->FileIdentity(JoinPath(dir_, "b")));
  EXPECT_TRUE(fs_->FileIdentity(JoinPath(dir_, "none")).error().IsNotFound());
}

TEST(PathTest, JoinAndDirName) {
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a/", "b"), "/a/b");
  EXPECT_EQ(JoinPath("/a", "/abs"), "/abs");
  EXPECT_EQ(DirName("/a/b/c"), "/a/b");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("name"), ".");
}

}  // namespace
}  // namespace dfrp::core
