/* Processes: names, CPU times, start times, the FEX tree, stale segments, exit. */
#include "helpers.h"
#include "t.h"

#include <felix/felix.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void self_facts(void)
{
    char buf[512];
    prctl(PR_SET_NAME, "felix-probe"); /* the main thread names the process */
    CHECK_EQ(felix_proc_name(getpid(), buf, sizeof buf), 0);
    CHECK(strcmp(buf, "felix-probe") == 0);
    CHECK_EQ(felix_proc_cmdline(getpid(), buf, sizeof buf), 0);
    CHECK(strstr(buf, "test_proc self_facts") != NULL);
    pid_t pp;
    CHECK_EQ(felix_proc_ppid(getpid(), &pp), 0);
    CHECK_EQ(pp, getppid());
    uint64_t st;
    CHECK_EQ(felix_proc_start_time(getpid(), &st), 0);
    CHECK(felix_proc_alive(getpid(), st));
    CHECK(!felix_proc_alive(getpid(), st + 1)); /* another start time: PID reused */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    CHECK_EQ(felix_proc_thread_name(getpid(), tid, buf, sizeof buf), 0);
    CHECK(strcmp(buf, "felix-probe") == 0);
    /* Burn CPU until the kernel's tick-based accounting shows it. */
    uint64_t cpu = 0;
    int64_t end = t_now_ns() + 5000000000LL;
    volatile uint64_t x = 0;
    while (cpu == 0 && t_now_ns() < end) {
        for (int i = 0; i < 1000000; i++)
            x += (uint64_t)i;
        CHECK_EQ(felix_proc_thread_cpu_ns(getpid(), tid, &cpu), 0);
    }
    CHECK(x > 0);
    CHECK(cpu > 0);
    CHECK_EQ(felix_proc_name(999999999, buf, sizeof buf), FELIX_ESRCH);
}

static void make_segment(const char *dir, pid_t pid)
{
    char path[256];
    snprintf(path, sizeof path, "%s/fex-%d-stats", dir, (int)pid);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
}

/* Our child and grandchild are FEX processes under us; a dead PID is stale;
 * a segment older than its process's start is a reused PID. */
static void list_tree_and_stale(void)
{
    char dir[200];
    snprintf(dir, sizeof dir, "%s/shm-tree", t_tmpdir());
    mkdir(dir, 0755);
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t child = fork();
    if (child == 0) {
        pid_t grand = fork();
        if (grand == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) < 0)
                _exit(1);
            _exit(0);
        }
        make_segment(dir, grand);
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        waitpid(grand, NULL, 0);
        _exit(0);
    }
    close(go[0]);
    make_segment(dir, getpid());
    make_segment(dir, child);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    make_segment(dir, dead);
    /* A segment last changed long before this (live) process started. */
    pid_t reused = getppid();
    char path[256];
    snprintf(path, sizeof path, "%s/fex-%d-stats", dir, (int)reused);
    make_segment(dir, reused);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    utimensat(AT_FDCWD, path, old, 0);

    felix_proc_list *l;
    REQUIRE(felix_proc_list_new(&l) == 0);
    /* The grandchild's segment appears once the child wrote it. */
    int64_t end = t_now_ns() + 10000000000LL;
    size_t n = 0;
    while (t_now_ns() < end) {
        CHECK_EQ(felix_proc_list_scan(l, dir), 0);
        n = felix_proc_list_count(l);
        if (n == 5)
            break;
        t_sleep_ms(5);
    }
    REQUIRE(n == 5);
    const felix_proc_entry *e0 = felix_proc_list_get(l, 0), *e1 = felix_proc_list_get(l, 1),
                           *e2 = felix_proc_list_get(l, 2);
    CHECK_EQ(e0->pid, getpid());
    CHECK_EQ(e0->depth, 0);
    CHECK_EQ(e0->state, FELIX_PROC_LIVE);
    CHECK(strstr(e0->cmdline, "test_proc") != NULL);
    CHECK_EQ(e1->pid, child);
    CHECK_EQ(e1->depth, 1);
    CHECK_EQ(e1->ppid, getpid());
    CHECK_EQ(e2->depth, 2); /* the grandchild */
    CHECK_EQ(e2->ppid, child);
    int saw_dead = 0, saw_reused = 0;
    for (size_t i = 3; i < n; i++) {
        const felix_proc_entry *e = felix_proc_list_get(l, i);
        if (e->pid == dead)
            saw_dead = e->state == FELIX_PROC_STALE_DEAD;
        if (e->pid == reused)
            saw_reused = e->state == FELIX_PROC_STALE_REUSED;
    }
    CHECK(saw_dead);
    CHECK(saw_reused);
    CHECK(write(go[1], "x", 1) == 1);
    close(go[1]);
    waitpid(child, NULL, 0);
    felix_proc_list_free(l);
    CHECK_EQ(felix_proc_list_scan(NULL, dir), FELIX_EINVAL);
}

static void watch_exit(void)
{
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    felix_proc_watch *w;
    REQUIRE(felix_proc_watch_open(&w, child, FELIX_PROC_WATCH_CHILD) == 0);
    int exited = -1, status = 0;
    CHECK_EQ(felix_proc_watch_check(w, &exited, &status), 0);
    CHECK_EQ(exited, 0);
    kill(child, SIGTERM);
    int64_t end = t_now_ns() + 10000000000LL;
    while (!exited && t_now_ns() < end) {
        felix_proc_watch_check(w, &exited, &status);
        t_sleep_ms(2);
    }
    CHECK_EQ(exited, 1);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    felix_proc_watch_close(w);

    /* Not our child: the pidfd (or polling) reports the exit, status unknown. */
    static const char *args[] = {"-t", "1", "--no-mem", NULL};
    pid_t sim = sim_start(args);
    REQUIRE(sim > 0);
    REQUIRE(felix_proc_watch_open(&w, sim, 0) == 0);
    exited = 0;
    CHECK_EQ(felix_proc_watch_check(w, &exited, &status), 0);
    CHECK_EQ(exited, 0);
    kill(sim, SIGTERM);
    end = t_now_ns() + 10000000000LL;
    /* Reap it ourselves (we are its parent) so the pidfd fires. */
    while (!exited && t_now_ns() < end) {
        waitpid(sim, NULL, WNOHANG);
        felix_proc_watch_check(w, &exited, &status);
        t_sleep_ms(2);
    }
    CHECK_EQ(exited, 1);
    CHECK_EQ(status, -1);
    felix_proc_watch_close(w);
    CHECK_EQ(felix_proc_watch_open(&w, sim, 0), FELIX_ESRCH);
}

/* A child that waits for the pipe's write end to close before it exits. */
static pid_t waiting_child(const int go[2])
{
    pid_t p = fork();
    if (p == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    return p;
}

/* felix_proc_starts: processes that exist at open are not new; one that
 * starts later is reported once, by PID and start time; a stale segment
 * never is. */
static void starts_reports_new_once(void)
{
    char dir[200];
    snprintf(dir, sizeof dir, "%s/shm-starts", t_tmpdir());
    mkdir(dir, 0755);
    int go[2];
    REQUIRE(pipe(go) == 0);
    pid_t old = waiting_child(go);
    make_segment(dir, old);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    felix_proc_starts *w;
    REQUIRE(felix_proc_starts_open(&w, dir) == 0);
    const felix_proc_entry *e = (const felix_proc_entry *)1;
    CHECK_EQ(felix_proc_starts_next(w, &e), 0);
    CHECK(e == NULL); /* the old one existed before */
    make_segment(dir, dead); /* a dead PID's segment appears: stale, not a start */
    CHECK_EQ(felix_proc_starts_next(w, &e), 0);
    CHECK(e == NULL);
    pid_t fresh = waiting_child(go);
    make_segment(dir, fresh);
    CHECK_EQ(felix_proc_starts_next(w, &e), 0);
    REQUIRE(e != NULL);
    CHECK_EQ(e->pid, fresh);
    uint64_t st = 0;
    CHECK_EQ(felix_proc_start_time(fresh, &st), 0);
    CHECK_EQ(e->start_ticks, st);
    CHECK_EQ(felix_proc_starts_next(w, &e), 0);
    CHECK(e == NULL); /* reported once */
    felix_proc_starts_close(w);
    CHECK_EQ(felix_proc_starts_next(NULL, &e), FELIX_EINVAL);
    close(go[1]);
    close(go[0]);
    waitpid(old, NULL, 0);
    waitpid(fresh, NULL, 0);
}

T_MAIN(T(self_facts), T(list_tree_and_stale), T(watch_exit), T(starts_reports_new_once))
