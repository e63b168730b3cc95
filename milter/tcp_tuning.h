// tcp_tuning.h — keeps libmilter's TCP connections free of the Nagle /
// delayed-ACK stall (~40 ms per exchange: the MTA writes the macro and the
// command packets separately). libmilter accepts and reads its sockets
// itself and shows us no descriptor, so rt-milter interposes accept() and
// read() (see tcp_tuning.cpp): accepted TCP sockets get TCP_NODELAY, and
// TCP_QUICKACK again before each read, since the kernel clears it.
#pragma once

namespace rtm {

// Off by default; the daemon turns it on (daemon.cpp, once libmilter listens)
// for inet/inet6 milter sockets, never for a unix one.
void enable_tcp_tuning(bool on);

}  // namespace rtm
