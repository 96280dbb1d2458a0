/*
 * For the tarsplit fuzz target: its ways out return to the fuzzer
 * instead of ending the process, and its main is a function to call.
 */
#include <setjmp.h>

extern jmp_buf	fuzz_return;
void	fuzz_exit(int) __attribute__((noreturn));

#define exit(status)		fuzz_exit(status)
#define err(status, ...)	fuzz_exit(status)
#define errx(status, ...)	fuzz_exit(status)
#define warnx(...)		((void)0)
#define status_exit(o, ...)	fuzz_exit(outcome_exit(o))
#define status_err(o, ...)	fuzz_exit(outcome_exit(o))
#define main			tarsplit_main
