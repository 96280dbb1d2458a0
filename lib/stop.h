#ifndef PLAKAR_PG_STOP_H
#define PLAKAR_PG_STOP_H

#include <signal.h>

/*
 * INT, TERM and HUP asking a program to stop: the signal's number in
 * stop_signal, for the program to end at its next check.  Caught
 * without SA_RESTART, so that a read or a wait under way returns at
 * once (EINTR).
 */
extern volatile sig_atomic_t stop_signal;

void	stop_signals_catch(void);

#endif
