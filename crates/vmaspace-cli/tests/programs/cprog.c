/* A small program for the corpus of recordings: private and shared memory, a file mapping, a
 * fork whose child unmaps, a thread, mseal, and an munmap that mseal refuses. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void *thread(void *arg) { return arg; }

int main(void) {
    char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1;
    mprotect(p, 4096, PROT_READ);
    int fd = open("f", O_RDWR | O_CREAT, 0600);
    ftruncate(fd, 4096);
    void *q = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);
    pid_t child = fork();
    if (child == 0) {
        munmap(q, 4096);
        _exit(0);
    }
    waitpid(child, 0, 0);
    pthread_t t;
    pthread_create(&t, 0, thread, 0);
    pthread_join(t, 0);
    syscall(462, p, 4096, 0);
    munmap(p, 8192);
    return 0;
}
