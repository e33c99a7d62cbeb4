/* Runs a fuzz harness without libFuzzer: LLVMFuzzerTestOneInput once on each file given and each file in each directory. */
/*
 * Linked with every t/fuzz/fuzz_*.c in a plain build, so that `make test` (t/00-fuzz-replay.t) replays the committed
 * corpora with any compiler. Files of a directory run in name order. Each input is copied into a buffer of exactly its
 * size, so that a sanitized build sees a read beyond it. Prints "# NAME" before each input (the last one printed is
 * the culprit of a crash) and "replayed N inputs" at the end; exits 0, or 2 when a path cannot be read.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len, fp)) != 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        perror(path);
        free(buf);
        return -1;
    }
    uint8_t *exact = malloc(len != 0 ? len : 1);
    memcpy(exact, buf, len);
    free(buf);
    printf("# %s\n", path);
    fflush(stdout);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int status = 0;

    for (int i = 1; i < argc; ++i) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            status = 2;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (run_file(argv[i]) != 0)
                status = 2;
            else
                ++count;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            status = 2;
            continue;
        }
        for (int j = 0; j < n; ++j) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
            if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                if (run_file(path) != 0)
                    status = 2;
                else
                    ++count;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replayed %zu inputs\n", count);
    return status;
}
