# A cache flight outlives the route table it started from: the request that started it is gone (cut by its deadline)
# and a reload freed the old config before the upstream answers; the answer is still stored, and served from the new
# config's route (docs/http.md, "Caching": entries survive a reload).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow
    body: '{"slow": true}'
    delay: 800ms
EOF
my $m = $mock->port;
my ($port, $admin) = (empty_port(), empty_port());

sub config {
    my ($route, $base) = @_;
    return <<"EOF";
listen:
  - host: 127.0.0.1
    port: $port
admin: 127.0.0.1:$admin
threads: 1
backends:
  svc: { url: "http://127.0.0.1:$m$base", timeout: 3s }
routes:
  - path: $route
    deadline: 200ms
    calls: [{ name: a, backend: svc, path: /slow, cache: 30s }]
EOF
}

my $gw = spawn_conflux(config('/before', ''));

sub reloads { my $n = () = $gw->log_text =~ /conflux: reloaded /g; return $n }

subtest 'a flight goes on after its request and its config are gone' => sub {
    my $r = http_get($gw->url('/before'));
    is($r->{body}, '{"a":null}', 'the request is cut by its deadline while the upstream works');
    like($r->{headers}{'server-timing'} // '', qr/^a;dur=[\d.]+;desc="deadline"/, 'the call: deadline');
    my $before = reloads();
    write_file($gw->{config}, config('/after', '/'));
    $gw->signal('HUP');
    ok(wait_until(sub { reloads() == $before + 1 }, 5), 'reloaded: nothing holds the old table any more');
    is($gw->metric('conflux_cache_entries'), 0, 'while the flight still waits for the upstream');
    ok(wait_until(sub { $gw->metric('conflux_cache_entries') == 1 }, 5), 'then it stores the answer');
    $r = http_get($gw->url('/after'));
    is($r->{status}, 200, 'the new route answers');
    is($r->{body}, '{"a":{"slow":true}}', 'with the body the flight stored');
    like($r->{headers}{'cache-status'} // '', qr/; hit;/, 'from the cache');
    is($mock->stub_count('GET /slow'), 1, 'one upstream request in all');
};

done_testing;
