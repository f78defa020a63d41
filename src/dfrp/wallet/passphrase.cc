#include "dfrp/wallet/passphrase.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

namespace dfrp::wallet {

using core::Err;
using core::Status;

namespace {

constexpr uint64_t kMaxSecretFile = 64 << 10;

Status NoTerminal(std::string_view env_name = "DFRP_PASSPHRASE") {
  std::string_view option =
      env_name == "DFRP_NEW_PASSPHRASE" ? "--new-passphrase-file" : "--passphrase-file";
  return Status::InvalidArgument(
      fmt::format("no passphrase: set {}, pass {} FILE, or run in a terminal", env_name, option));
}

// Cuts `text` at its first line end ("\n" or "\r\n"), wiping the rest.
void KeepFirstLine(SecretString* text) {
  size_t nl = text->view().find('\n');
  if (nl != std::string_view::npos) text->resize(nl);
  if (!text->empty() && text->view().back() == '\r') text->resize(text->size() - 1);
}

// Reads one line from fd with echo off, restoring the terminal afterwards.
core::Result<SecretString> ReadNoEcho(int fd) {
  termios old_mode;
  if (tcgetattr(fd, &old_mode) != 0) return Err(NoTerminal());
  termios quiet = old_mode;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  tcsetattr(fd, TCSAFLUSH, &quiet);
  SecretString line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  sodium_memzero(&c, 1);
  tcsetattr(fd, TCSAFLUSH, &old_mode);
  KeepFirstLine(&line);
  return line;
}

// The passphrase from the first source that has one (see the header comment).
core::Result<SecretString> FromSources(core::FileSystem* fs, const PassphraseSource& src,
                                       std::string_view what, bool confirm) {
  if (!src.file.empty()) {
    DFRP_ASSIGN_OR_RETURN(SecretString text, ReadSecretFile(fs, src.file));
    KeepFirstLine(&text);
    return text;
  }
  if (auto env = src.getenv ? src.getenv(src.env_name) : std::nullopt) return TakeSecret(&*env);
  if (!src.prompt) return Err(NoTerminal(src.env_name));
  DFRP_ASSIGN_OR_RETURN(SecretString pass, src.prompt(fmt::format("{}: ", what)));
  if (confirm) {
    DFRP_ASSIGN_OR_RETURN(SecretString again, src.prompt(fmt::format("repeat {}: ", what)));
    if (!(again == pass)) {
      return Err(Status::InvalidArgument("the two passphrases differ: type the same twice"));
    }
  }
  return pass;
}

}  // namespace

core::Result<SecretString> PromptOnTerminal(std::string_view prompt) {
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Err(NoTerminal());
  [[maybe_unused]] ssize_t w = write(fd, prompt.data(), prompt.size());
  auto line = ReadNoEcho(fd);
  close(fd);
  return line;
}

core::Result<SecretString> ReadSecretFile(core::FileSystem* fs, const std::string& path) {
  DFRP_ASSIGN_OR_RETURN(auto file, fs->OpenForRead(path));
  DFRP_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size > kMaxSecretFile) {
    return Err(Status::InvalidArgument(fmt::format(
        "{} is {} bytes, too large for a passphrase or key file (64 KiB at most): name the "
        "right file",
        path, size)));
  }
  SecretString text;
  text.resize(size);
  DFRP_RETURN_IF_ERROR(file->ReadExact(0, size, text.data()));
  return text;
}

core::Result<SecretString> ReadPassphrase(core::FileSystem* fs, const PassphraseSource& src,
                                          std::string_view what, bool confirm) {
  DFRP_ASSIGN_OR_RETURN(SecretString pass, FromSources(fs, src, what, confirm));
  if (pass.empty()) {
    return Err(Status::InvalidArgument(fmt::format("{} is empty: choose a non-empty one", what)));
  }
  return pass;
}

}  // namespace dfrp::wallet
