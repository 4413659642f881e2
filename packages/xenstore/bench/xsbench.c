/*
 * Hyperlab xenstored benchmark client: libxenstore (C), one request at a time.
 * Usage: xsbench <keys> <watch-rounds>
 * Prints "writes <n> <seconds>", "reads <n> <seconds>", "watch-rtt-us <median> <p90>".
 * Reaches the daemon through XENSTORED_PATH, as every libxenstore client does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xenstore.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int keys = argc > 1 ? atoi(argv[1]) : 20000;
    int rounds = argc > 2 ? atoi(argv[2]) : 2000;
    struct xs_handle *h = xs_open(0), *w = xs_open(0);
    char path[64], val[32];
    double t0, t1;
    unsigned int len, num;
    char **ev;
    double *rtt;

    if (!h || !w) {
        fprintf(stderr, "xsbench: cannot connect (is XENSTORED_PATH set?)\n");
        return 2;
    }

    t0 = now();
    for (int i = 0; i < keys; i++) {
        snprintf(path, sizeof(path), "/bench/d%d/k%d", i % 100, i);
        snprintf(val, sizeof(val), "value-%d", i);
        if (!xs_write(h, XBT_NULL, path, val, strlen(val))) {
            perror("xs_write");
            return 1;
        }
    }
    t1 = now();
    printf("writes %d %.6f\n", keys, t1 - t0);

    t0 = now();
    for (int i = 0; i < keys; i++) {
        char *v;
        snprintf(path, sizeof(path), "/bench/d%d/k%d", (i * 7919) % keys % 100, (i * 7919) % keys);
        v = xs_read(h, XBT_NULL, path, &len);
        if (!v) {
            perror("xs_read");
            return 1;
        }
        free(v);
    }
    t1 = now();
    printf("reads %d %.6f\n", keys, t1 - t0);

    if (!xs_watch(w, "/bench/watched", "tok")) {
        perror("xs_watch");
        return 1;
    }
    ev = xs_read_watch(w, &num); /* the event every new watch fires */
    free(ev);
    rtt = calloc(rounds, sizeof(*rtt));
    for (int i = 0; i < rounds; i++) {
        snprintf(val, sizeof(val), "%d", i);
        t0 = now();
        if (!xs_write(h, XBT_NULL, "/bench/watched", val, strlen(val))) {
            perror("xs_write");
            return 1;
        }
        ev = xs_read_watch(w, &num);
        t1 = now();
        if (!ev) {
            perror("xs_read_watch");
            return 1;
        }
        free(ev);
        rtt[i] = (t1 - t0) * 1e6;
    }
    qsort(rtt, rounds, sizeof(*rtt), cmp);
    printf("watch-rtt-us %.1f %.1f\n", rtt[rounds / 2], rtt[rounds * 9 / 10]);
    xs_close(w);
    xs_close(h);
    return 0;
}
