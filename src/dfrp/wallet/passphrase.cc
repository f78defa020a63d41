#include "dfrp/wallet/passphrase.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

namespace dfrp::wallet {

using core::Err;
using core::Status;

namespace {

Status NoTerminal(std::string_view env_name = "DFRP_PASSPHRASE") {
  std::string_view option =
      env_name == "DFRP_NEW_PASSPHRASE" ? "--new-passphrase-file" : "--passphrase-file";
  return Status::InvalidArgument(
      fmt::format("no passphrase: set {}, pass {} FILE, or run in a terminal", env_name, option));
}

std::string FirstLine(std::string text) {
  size_t nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

// Reads one line from fd with echo off, restoring the terminal afterwards.
core::Result<std::string> ReadNoEcho(int fd) {
  termios old_mode;
  if (tcgetattr(fd, &old_mode) != 0) return Err(NoTerminal());
  termios quiet = old_mode;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  tcsetattr(fd, TCSAFLUSH, &quiet);
  std::string line;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  tcsetattr(fd, TCSAFLUSH, &old_mode);
  return FirstLine(std::move(line));
}

}  // namespace

core::Result<std::string> PromptOnTerminal(std::string_view prompt) {
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Err(NoTerminal());
  [[maybe_unused]] ssize_t w = write(fd, prompt.data(), prompt.size());
  auto line = ReadNoEcho(fd);
  close(fd);
  return line;
}

core::Result<std::string> ReadPassphrase(core::FileSystem* fs, const PassphraseSource& src,
                                         std::string_view what, bool confirm) {
  std::string pass;
  if (!src.file.empty()) {
    DFRP_ASSIGN_OR_RETURN(std::string text, core::ReadWholeFile(fs, src.file));
    pass = FirstLine(std::move(text));
  } else if (auto env = src.getenv ? src.getenv(src.env_name) : std::nullopt) {
    pass = *env;
  } else if (src.prompt) {
    DFRP_ASSIGN_OR_RETURN(pass, src.prompt(fmt::format("{}: ", what)));
    if (confirm) {
      DFRP_ASSIGN_OR_RETURN(std::string again, src.prompt(fmt::format("repeat {}: ", what)));
      if (again != pass) {
        return Err(Status::InvalidArgument("the two passphrases differ: type the same twice"));
      }
    }
  } else {
    return Err(NoTerminal(src.env_name));
  }
  if (pass.empty()) {
    return Err(Status::InvalidArgument(fmt::format("{} is empty: choose a non-empty one", what)));
  }
  return pass;
}

}  // namespace dfrp::wallet
