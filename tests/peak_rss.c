/* Test helper: run a command and print its peak resident set in KiB
 * (wait4's ru_maxrss). A small C parent keeps the figure the command's own:
 * Linux carries a process's peak across exec, so a child forked from a big
 * interpreter would report the interpreter's.
 * Usage: peak_rss COMMAND [ARG...]; exits with the command's status. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0)
        return 1;
    fprintf(stderr, "peak_rss %ld\n", ru.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
