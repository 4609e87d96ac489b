// Runs `program call` in a child process and checks how it ended: for call "valid", exit
// status 0; otherwise death by SIGABRT with every EXPECTED text in what the child wrote to
// stderr.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PROGRAM CALL [EXPECTED...]\n", argv[0]);
    return 2;
  }
  int fds[2];
  if (pipe(fds) != 0) return 2;
  const pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    char* args[] = {argv[1], argv[2], nullptr};
    execv(argv[1], args);
    std::perror("execv");
    _exit(127);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
    err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 2;
  std::fprintf(stderr, "child stderr:\n%s", err.c_str());
  const bool valid = std::strcmp(argv[2], "valid") == 0;
  if (valid) {
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::printf("%s: %s\n", argv[2], ok ? "exited 0" : "did not exit 0");
    return ok ? 0 : 1;
  }
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
    std::printf("%s: expected death by SIGABRT, got %s %d\n", argv[2],
                WIFSIGNALED(status) ? "signal" : "exit status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return 1;
  }
  for (int a = 3; a < argc; ++a) {
    if (err.find(argv[a]) == std::string::npos) {
      std::printf("%s: stderr lacks \"%s\"\n", argv[2], argv[a]);
      return 1;
    }
  }
  std::printf("%s: aborted with the expected message\n", argv[2]);
  return 0;
}
