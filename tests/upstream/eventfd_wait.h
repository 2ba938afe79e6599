/*
 * Test helper: waits until a DNS job's thread has signalled its eventfd,
 * instead of sleeping a fixed 20 ms after it answered. The job's eventfd is
 * private to src/upstream, so this looks for it the way a debugger would:
 * every "anon_inode:[eventfd]" in /proc/self/fd other than `except`, whose
 * /proc/self/fdinfo entry shows a non-zero "eventfd-count". Polls every
 * 5 ms up to timeout_ms (generous: the machine may be loaded) and returns
 * whether one was found, so the caller can assert the race was set up.
 */
#ifndef GW_TEST_EVENTFD_WAIT_H
#define GW_TEST_EVENTFD_WAIT_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool signalled_eventfd_present(int except)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        int fd = atoi(de->d_name);
        if (de->d_name[0] == '.' || fd == except || fd == dirfd(d))
            continue;
        char path[64], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (strcmp(target, "anon_inode:[eventfd]") != 0)
            continue;
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char line[128];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "eventfd-count:", 14) == 0 && strtoull(line + 14, NULL, 16) != 0)
                found = true;
        fclose(f);
    }
    closedir(d);
    return found;
}

static bool wait_signalled_eventfd(int except, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 5) {
        if (signalled_eventfd_present(except))
            return true;
        usleep(5000);
    }
    return false;
}

#endif
