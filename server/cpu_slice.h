// CpuSlice: tells the kernel's scheduler how long a slice of CPU the
// calling thread wants, so that answering a request is not queued behind
// threads streaming large bodies.
//
// Under load every connection thread is runnable, and with a fair
// scheduler a thread that just woke to answer a request waits its turn
// behind dozens of bulk senders: on 2 cores with 50 streams, tens of ms.
// Linux's EEVDF scheduler (6.12 and later) takes a requested slice per
// thread (sched_setattr's sched_runtime for SCHED_OTHER, no privilege
// needed): a short slice gives a waking thread an early deadline, so it runs
// almost at once; a long slice lets a bulk sender run longer between
// switches. Its share of the CPU is the same either way. On kernels that
// ignore or refuse the request, this does nothing.
//
// Thread-safety: each call affects only the calling thread; the state is
// thread-local, so calls that change nothing cost no system call.

#ifndef FANOUT_SERVER_CPU_SLICE_H_
#define FANOUT_SERVER_CPU_SLICE_H_

namespace fanout {

// For threads about to answer requests: the shortest slice (0.1 ms).
void UseInteractiveCpuSlice();

// For a thread in the middle of a large body: a long slice (10 ms).
void UseBulkCpuSlice();

}  // namespace fanout

#endif  // FANOUT_SERVER_CPU_SLICE_H_
