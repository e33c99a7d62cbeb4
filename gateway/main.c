/* conflux: argv, signals, listeners and the event loop. */
#include <stdio.h>
#include <string.h>
#include "version.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("conflux %s\n", cf_version);
        return 0;
    }
    return 1;
}
