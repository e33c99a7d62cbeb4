# HTTP/1.1 clients that never read their answers. h2o 2.2.5 has no send timeout: once conflux's answer is handed to
# it, a connection whose peer does not read stays open for ever, and its request (an in-flight slot, its answer in
# memory) is never disposed. Such clients must be closed after a bounded time, not lock others out.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Test::More;
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';

my $dir = tmpdir();
write_file("$dir/big.json", '{"a":"' . ('x' x (4 * 1024 * 1024)) . '"}');
my $mock = spawn_mock(<<"EOF");
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /big
    body_file: $dir/big.json
EOF
my $m = $mock->port;

sub start {
    my ($max_inflight) = @_;
    my $admin = empty_port();
    my $gw = spawn_conflux(<<"EOF");
threads: 1
admin: 127.0.0.1:$admin
limits: { max_inflight: $max_inflight }
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
  - path: /api/{rest*}
    proxy: svc
EOF
    return ($gw, $admin);
}

sub metric {
    my ($admin, $name) = @_;
    my $body = http_get("http://127.0.0.1:$admin/metrics")->{body};
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : 0;
}

sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    until ($cond->()) {
        return 0 if time > $deadline;
        sleep 0.1;
    }
    return 1;
}

# a connection with a small receive buffer, so that the answers pile up on conflux's side
sub connect_small {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(Proto => 'tcp') or die $!;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    $s->connect(Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1'))) or die "connect: $!";
    $s->blocking(0);
    return $s;
}

# writes as much of $bytes as the socket takes within $secs
sub push_bytes {
    my ($s, $bytes, $secs) = @_;
    my $end = time + $secs;
    while (length $bytes && time < $end) {
        my $n = syswrite($s, $bytes, 65536);
        if ($n) { substr($bytes, 0, $n) = '' } else { sleep 0.01 }
    }
}

subtest 'pipelined requests whose answers are never read' => sub {
    my ($gw, $admin) = start(3);
    my @attackers = map { connect_small($gw->port) } 1 .. 3;
    push_bytes($_, "GET /u/1 HTTP/1.1\r\nHost: x\r\n\r\n" x 20000, 3) for @attackers;
    ok(wait_until(sub { metric($admin, 'conflux_inflight_requests') == 3 }, 5),
       'three connections that never read hold three requests in flight (max_inflight: 3)');
    is(http_get($gw->url('/u/2'))->{status}, 503, 'meanwhile another client gets 503');
    my $t0 = time;
    ok(wait_until(sub { http_get($gw->url('/u/2'))->{status} == 200 }, 20),
       'within 20 s the readers that stall are closed and other clients are served again')
        or diag(sprintf('still 503 after %.0f s; in flight: %d', time - $t0, metric($admin, 'conflux_inflight_requests')));
    close $_ for @attackers;
};

subtest 'a large proxied answer that is never read' => sub {
    my ($gw, $admin) = start(2);
    my @attackers = map { connect_small($gw->port) } 1 .. 2;
    push_bytes($_, "GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n", 1) for @attackers;
    ok(wait_until(sub { metric($admin, 'conflux_inflight_requests') == 2 }, 5), 'two 4 MiB answers are stuck in flight');
    my $t0 = time;
    ok(wait_until(sub { http_get($gw->url('/u/3'))->{status} == 200 }, 20),
       'within 20 s the stalled connections are closed and other clients are served again')
        or diag(sprintf('still refused after %.0f s; in flight: %d', time - $t0, metric($admin, 'conflux_inflight_requests')));
    close $_ for @attackers;
};

done_testing;
