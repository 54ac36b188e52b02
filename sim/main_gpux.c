/* main_gpux.c — `gpux`: one command for operators, providers and buyers.
 * Stack control (up, down, status, ledger check) runs the exchange on this
 * machine; every other command is a client of a running gateway. */
#include <stdio.h>
#include <string.h>

#include "sim/gpux_cli.h"

static void usage(void)
{
    fputs("gpux — an exchange for GPU compute capacity\n\n"
          "Stack (operations.md):\n"
          "  gpux up --data DIR [--http-port N] [--https-port N] [--clock wall|sim]\n"
          "                                                       start or recover the stack\n"
          "                                                       (--clock sim: a simulator drives\n"
          "                                                       the market clock; kept in DIR)\n"
          "  gpux down --data DIR                                 stop it (SIGTERM, then wait)\n"
          "  gpux status --data DIR                               KEY=value lines, exit 0 if all run\n"
          "  gpux ledger check --data DIR                         check the ledger's invariants\n\n",
          stdout);
    gpux_client_usage();
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage();
        return argc < 2 ? GPUX_EXIT_USAGE : GPUX_EXIT_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "up") == 0 || strcmp(cmd, "down") == 0 || strcmp(cmd, "status") == 0 ||
        strcmp(cmd, "ledger") == 0)
        return gpux_stack_main(argc - 1, argv + 1);
    return gpux_client_main(argc - 1, argv + 1);
}
