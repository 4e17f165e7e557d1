#include <quantsim/errors.h>
#include <quantsim/sim/atomic_file.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <streambuf>

namespace quantsim {
namespace {

std::string system_error_text(int error) { return std::strerror(error); }

[[noreturn]] void fail(const std::string& path, const std::string& what, int error) {
  QS_THROW(c10::Error, "writing '", path, "' failed: ", what, ": ", system_error_text(error));
}

/// An output buffer writing straight to a file descriptor, so that the file can be fsync'ed
/// through the same descriptor (std::ofstream exposes none).
///
/// After the first failed write it keeps the errno and discards everything else while reporting
/// success: the stream never goes bad in the middle of a writer. A writer that checks its stream
/// would otherwise throw from wherever it is, and torch's PyTorchStreamWriter (torch::save,
/// OutputArchive::save_to) then throws a second time from its destructor, which ends the process
/// in std::terminate. The failure is reported once the writer has returned (PendingFile::write).
class FdStreamBuf : public std::streambuf {
 public:
  explicit FdStreamBuf(int fd) : fd_(fd), buffer_(new char[kSize]) {
    setp(buffer_.get(), buffer_.get() + kSize);
  }
  /// The errno of the first failed write, 0 when every write succeeded.
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    drain();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override {
    drain();
    return 0;
  }

 private:
  static constexpr size_t kSize = size_t{1} << 16;

  void drain() {
    const char* p = pbase();
    auto left = static_cast<size_t>(pptr() - pbase());
    setp(buffer_.get(), buffer_.get() + kSize);
    if (error_ != 0) return;  // the file is lost already: nothing more reaches the disk
    while (left > 0) {
      const ssize_t written = ::write(fd_, p, left);
      if (written < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        return;
      }
      p += written;
      left -= static_cast<size_t>(written);
    }
  }

  int fd_;
  std::unique_ptr<char[]> buffer_;
  int error_ = 0;
};

/// One file being written under its temporary name; removed again unless committed.
class PendingFile {
 public:
  explicit PendingFile(std::string path) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    const fs::path target(path_);
    directory_ = target.has_parent_path() ? target.parent_path().string() : std::string(".");
    static std::atomic<uint64_t> counter{0};
    // O_EXCL makes the name ours alone; a collision (another process, a stale file) just tries
    // the next name.
    for (int attempt = 0; attempt < 100; ++attempt) {
      const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
      const std::string name = "." + target.filename().string() + "." + std::to_string(::getpid()) +
                               "-" + std::to_string(counter++) + "-" + std::to_string(stamp) +
                               ".tmp";
      temporary_ = (fs::path(directory_) / name).string();
      fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) return;
      if (errno != EEXIST) {
        const int error = errno;
        temporary_.clear();
        fail(path_, "cannot create a temporary file in '" + directory_ + "'", error);
      }
    }
    const std::string tried = temporary_;
    temporary_.clear();
    fail(path_, "no unused temporary name (last tried '" + tried + "')", EEXIST);
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  ~PendingFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!temporary_.empty()) ::unlink(temporary_.c_str());
  }

  /// Runs `write`, then flushes, checks, fsyncs and closes the temporary file.
  void write(const StreamWriter& write) {
    {
      FdStreamBuf buffer(fd_);
      std::ostream stream(&buffer);
      write(stream);
      stream.flush();
      if (buffer.error() != 0) fail(path_, "the stream failed", buffer.error());
      // The buffer never fails the stream itself; a writer may have (a failed formatting).
      if (!stream) fail(path_, "the stream failed", EIO);
    }
    if (::fsync(fd_) != 0) fail(path_, "fsync", errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(path_, "close", errno);
  }

  /// Renames the complete temporary file over the destination.
  void commit() {
    if (::rename(temporary_.c_str(), path_.c_str()) != 0) {
      fail(path_, "rename from '" + temporary_ + "'", errno);
    }
    temporary_.clear();
    // The rename itself lives in the directory: sync it too. Best effort: a file system that
    // cannot sync a directory has still replaced the file atomically.
    const int dir = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
  }

 private:
  std::string path_;
  std::string directory_;
  std::string temporary_;  // empty: nothing to remove
  int fd_ = -1;
};

}  // namespace

void write_file_atomically(const std::string& path, const StreamWriter& write) {
  write_files_atomically({{path, write}});
}

void write_files_atomically(const std::vector<std::pair<std::string, StreamWriter>>& files) {
  std::vector<std::unique_ptr<PendingFile>> pending;
  pending.reserve(files.size());
  for (const auto& [path, write] : files) {
    pending.push_back(std::make_unique<PendingFile>(path));
    pending.back()->write(write);
  }
  for (auto& file : pending) file->commit();
}

}  // namespace quantsim
