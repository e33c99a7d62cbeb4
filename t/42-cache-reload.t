# A cache flight outlives the route table it started from: the request that started it is gone (cut by its deadline)
# and a reload freed the old config before the upstream answers; the answer is still stored, and served from the new
# config's route (docs/http.md, "Caching": entries survive a reload).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow
    body: '{"slow": true}'
    delay: 800ms
EOF
my $m = $mock->port;
my $port = empty_port();

sub config {
    my ($route, $base) = @_;
    return <<"EOF";
listen:
  - host: 127.0.0.1
    port: $port
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
    my $deadline = time + 5;
    sleep 0.02 while reloads() == $before && time < $deadline;
    is(reloads(), $before + 1, 'reloaded: nothing holds the old table any more, but the flight runs on');
    sleep 0.9; # the upstream answers now
    $r = http_get($gw->url('/after'));
    is($r->{status}, 200, 'the new route answers');
    is($r->{body}, '{"a":{"slow":true}}', 'with the body the flight stored');
    like($r->{headers}{'cache-status'} // '', qr/; hit;/, 'from the cache');
    my $s = decode_json_ok(http_get($mock->url('/__mock/stats'))->{body});
    is($s->{stubs}{'GET /slow'}, 1, 'one upstream request in all');
};

is($gw->stop, 0, 'exit 0');
done_testing;
