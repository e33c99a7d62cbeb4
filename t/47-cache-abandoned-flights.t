# Known problem (TODO): a cached call's upstream request outlives the clients that waited for it (docs/http.md,
# "Coalescing": a client that leaves only stops waiting), including while it is still queued for one of the backend's
# max_connections. So a client that sends requests for distinct keys and leaves at once frees its max_inflight slots
# but leaves its requests in the backend's queue: the work nobody waits for any more goes first, and a later request
# that someone does wait for starves behind it until its own timeout. An uncached call is cancelled when its client
# leaves, so this needs a cached call. A fix would cancel an abandoned flight that has no connection yet.
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
    local $TODO = 'abandoned cache flights keep their place in the backend\'s connection queue';
    is($r->{body}, '{"a":{"id":"wanted"}}', 'the next request is answered by the upstream') or diag($r->{headers}{'server-timing'});
    cmp_ok($r->{elapsed}, '<', 2, sprintf('within about its 1 s upstream time (%.2fs)', $r->{elapsed}));
};

done_testing();
