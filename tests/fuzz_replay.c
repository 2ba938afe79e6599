/*
 * Replays fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer, so
 * that every corpus runs as an ordinary test (and under the sanitizers).
 * Arguments are files or directories (one level, every regular file).
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, int *count)
{
    uint8_t *data;
    size_t len;
    gw_error e;
    if (gw_read_file(path, 64u << 20, &data, &len, &e) != 0) {
        fprintf(stderr, "fuzz-replay: %s\n", e.msg);
        return 1;
    }
    /* Copy into an exact-size allocation so ASan sees reads past the end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(data);
        return 1;
    }
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    (*count)++;
    return 0;
}

int main(int argc, char **argv)
{
    int count = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz-replay: %s: not found\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_file(argv[i], &count);
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d)
            return 1;
        struct dirent *ent;
        while ((ent = readdir(d)) != NULL) {
            if (ent->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], ent->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                failed |= run_file(path, &count);
        }
        closedir(d);
    }
    printf("fuzz-replay: %d inputs, no crash\n", count);
    return failed || count == 0;
}
