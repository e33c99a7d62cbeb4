# A cached call's upstream request outlives the clients that waited for it (docs/http.md, "Coalescing": a client that
# leaves only stops waiting), except while it is still queued for one of the backend's max_connections: then nothing
# of it has been sent, and left in the queue it would go before a later request that somebody does wait for. So a
# client that sends requests for distinct keys and leaves at once must not starve the next one. An uncached call is
# cancelled when its client leaves anyway, so this needs a cached call.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 1s
EOF
my $m = $mock->port;
my $admin = empty_port();
my $gw = spawn_conflux(<<"EOF");
admin: 127.0.0.1:$admin
threads: 2
limits:
  max_inflight: 50
backends:
  svc: { url: "http://127.0.0.1:$m", max_connections: 4, timeout: 5s }
routes:
  - path: /c/{id}
    calls: [{ name: a, backend: svc, path: "/slow/{id}", cache: 30s, timeout: 3s }]
EOF

subtest 'requests their clients left do not hold up the next one' => sub {
    # 40 requests for distinct keys; their clients leave once all are admitted
    my @s;
    for my $i (1 .. 40) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die "connect: $!";
        print $s "GET /c/gone$i HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        push @s, $s;
    }
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 40 }, 5), 'forty requests admitted');
    close $_ for @s;
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }, 5), 'their clients left: no request in flight');
    my $r = http_get($gw->url('/c/wanted'));
    is($r->{body}, '{"a":{"id":"wanted"}}', 'the next request is answered by the upstream') or diag($r->{headers}{'server-timing'});
    # the requests already sent keep their connections for up to their 1 s; then its own 1 s; the queue before it (36
    # requests of 1 s on 4 connections) would be 9 s more
    cmp_ok($r->{elapsed}, '<', 2.5, sprintf('within two upstream times (%.2fs), not after the queue', $r->{elapsed}));
    cmp_ok($gw->metric('conflux_cache_abandoned_total'), '>=', 30, 'the queued requests of the clients that left were dropped');
};

done_testing();
