# Hostile review of foreach:/batch: (gateway/fanout.c st_foreach_t, foreach_pump, foreach_conclude, cancel_running):
# a hostile source upstream (arrays far over max_items, commas in elements, one duplicated key), a hostile element
# upstream (large answers), a client that goes away, and a careless config (required, cache, default:).
#
# The first six subtests were findings of this review (each failed on the code of the time, and is fixed); the others
# are attacks that held up. Run under the ASan build too (CONFLUX_BUILD=build-asan): each process checks its log for
# sanitizer reports when it stops.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);

my $conflux = bindir() . '/conflux';
plan skip_all => "$conflux is not built" unless -x $conflux;

my $dir = tmpdir();
# a source 500 times over max_items (10), and an element answer of about 40 KB (under max_response_body, 64 KiB)
write_file("$dir/many.json", '{"els": [' . join(',', 1 .. 5000) . ']}');
write_file("$dir/elem40k.json", '[' . join(',', (1234567) x 5000) . ']');
# a source whose "t" is 60 KB of '%' (180 KB once percent-encoded), with twenty elements
write_file("$dir/hugestr.json", '{"els": [' . join(',', 1 .. 20) . '], "t": "' . ('%' x 60000) . '"}');

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /src/many
    body_file: many.json
  - path: /src/thirty
    body: '{"els": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30]}'
  - path: /src/mixfail
    body: '{"els": ["f", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]}'
  - path: /src/comma
    body: '{"els": ["a,b", "c"]}'
  - path: /src/six
    body: '{"els": [1, 2, 3, 4, 5, 6]}'
  - path: /src/dups
    body: '{"els": [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]}'
  - path: /src/forty
    body: '{"els": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40]}'
  - path: /src/hugestr
    body_file: hugestr.json
  - path: /src/fails
    status: 500
    body: '{"e": 1}'
  - path: /m/f
    status: 500
    body: '{"e": 1}'
    delay: 50ms
  - path: /m/{id}
    body: '{"id": "{id}"}'
    delay: 2s
  - path: /e/{id}
    body: '{"id": "{id}"}'
  - path: /big/{id}
    body_file: elem40k.json
  - path: /bq
    body: '["one", "two"]'
  - path: /bd/1,2
    body: '[{"n": 1}, {"n": 2}]'
    delay: 300ms
  - path: /bd/3,4
    body: '[{"n": 3}, {"n": 4}]'
    delay: 150ms
  - path: /bd/5,6
    body: '[{"n": 5}, {"n": 6}]'
    delay: 10ms
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 1s
  - path: /hang/{id}
    body: '{"id": "{id}"}'
    delay: 3s
EOF
my $m = $mock->port;
my $admin = empty_port();
my $log = "$dir/access.log";

my $gw = spawn_conflux(<<"EOF");
admin: 127.0.0.1:$admin
access_log: $log
threads: 1
limits: { max_response_body: 64KiB }
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 3s
routes:
  - path: /many
    calls:
      - { name: src, backend: svc, path: /src/many }
      - { name: els, backend: svc, path: "/e/{item}", foreach: src.els, max_items: 10 }
  - path: /reqstop
    calls:
      - { name: src, backend: svc, path: /src/mixfail }
      - { name: els, backend: svc, path: "/m/{item}", foreach: src.els, required: true, concurrency: 8 }
  - path: /srcdefault
    calls:
      - { name: src, backend: svc, path: /src/fails, default: { els: [1, 2], x: 5 } }
      - { name: els, backend: svc, path: "/e/{item}", foreach: src.els }
      - { name: plain, backend: svc, path: "/e/{src.x}" }
  - path: /bigels
    calls:
      - { name: src, backend: svc, path: /src/thirty }
      - { name: els, backend: svc, path: "/big/{item}", foreach: src.els, concurrency: 4 }
  - path: /amplify
    calls:
      - { name: src, backend: svc, path: /src/hugestr, allow: [els, t] }
      - { name: els, backend: svc, path: "/e/{item}?t={src.t}", foreach: src.els }
  - path: /comma
    calls:
      - { name: src, backend: svc, path: /src/comma }
      - { name: q, backend: svc, path: "/bq?ids={items}", foreach: src.els, batch: 2 }
  - path: /batchorder
    calls:
      - { name: src, backend: svc, path: /src/six }
      - { name: b, backend: svc, path: "/bd/{items}", foreach: src.els, batch: 2 }
  - path: /coalesced-deadline
    deadline: 200ms
    calls:
      - { name: src, backend: svc, path: /src/dups }
      - { name: els, backend: svc, path: "/slow/{item}", foreach: src.els, concurrency: 4, cache: 30s }
  - path: /gone
    calls:
      - { name: src, backend: svc, path: /src/forty }
      - { name: els, backend: svc, path: "/hang/{item}", foreach: src.els, concurrency: 4 }
EOF



# the access log line of the newest request to $route
sub log_line {
    my ($route) = @_;
    my $line;
    wait_until(sub { ($line) = reverse grep { /"route":"\Q$route\E"/ } split /\n/, (-e $log ? slurp($log) : ''); $line }, 5);
    return $line // '';
}

# --- findings ------------------------------------------------------------------------------------------------------

subtest 'a source far over max_items does not add its length to conflux_call_elements_total' => sub {
    $mock->reset;
    my $before = metrics($admin);
    my ($r, $doc) = get_json($gw, '/many');
    is($r->{status}, 200, '200 (optional call)');
    like(timing_of($r, 'els'), qr/desc="too_large 0\/5000"/, 'Server-Timing: too_large 0/5000');
    is($mock->stats->{stubs}{'GET /e/{id}'}, 0, 'no element request went out');
    my $after;
    wait_until(sub { $after = metrics($admin); exists $after->{'conflux_requests_total{route="/many",status="200"}'} }, 5);
    my $failed = delta($before, $after, 'conflux_call_elements_total{route="/many",call="els",result="failed"}');
    # one request whose upstream answers a long array moves the failure ratio of the call by any amount it likes
    cmp_ok($failed, '<=', 10, "failed elements counted for one request: $failed (at most max_items, 10)");
};

subtest 'a required foreach call that stops counts the element requests it had sent' => sub {
    $mock->reset;
    my $before = metrics($admin);
    my ($r, $doc) = get_json($gw, '/reqstop');
    is($r->{status}, 502, '502: the first element got a 500');
    ok(wait_until(sub { $mock->stats->{aborted} == 7 }, 5), 'the seven other elements were sent, then cancelled');
    my $sent = $mock->stats->{stubs}{'GET /m/{id}'} + $mock->stats->{stubs}{'GET /m/f'};
    is($sent, 8, 'eight element requests reached the upstream');
    like(log_line('/reqstop'), qr/"name":"els"[^}]*"attempts":8/, 'access log: attempts 8 for the call');
    like(timing_of($r, 'els'), qr/attempts=8/, 'Server-Timing: attempts=8');
    my $after = metrics($admin);
    # the source call's one request and the eight elements' requests
    is(delta($before, $after, 'conflux_upstream_attempts_total{backend="svc"}'), 9, 'conflux_upstream_attempts_total: 9');
};

subtest 'foreach over a failed source with default: goes over the default (as {src.x} reads it)' => sub {
    $mock->reset;
    my ($r, $doc) = get_json($gw, '/srcdefault');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{src}, { els => [1, 2], x => 5 }, 'the source failed and gave its default');
    is_deeply($doc->{plain}, { id => '5' }, 'a plain call reads {src.x} from the default (docs/http.md, default:)');
    is_deeply($doc->{els}, [{ id => '1' }, { id => '2' }], 'the foreach call goes over the default\'s array too');
};

subtest 'a foreach call\'s element answers together stay within max_response_body' => sub {
    # thirty element answers of ~40 KB, each under the 64 KiB limit: together over it, so the call fails with
    # too_large once they pass it, and the elements not started never go (a foreach call would otherwise hold
    # max_items x max_response_body, parsed)
    $mock->reset;
    my ($r, $doc) = get_json($gw, '/bigels');
    is($r->{status}, 200, 'status 200 (an optional call)');
    ok(exists $doc->{els} && !defined $doc->{els}, 'the call is null');
    like(timing_of($r, 'els'), qr/desc="too_large/, 'Server-Timing: too_large');
    cmp_ok($mock->stats->{stubs}{'GET /big/{id}'}, '<', 30, 'the elements past the budget were not asked for');
};

subtest 'a hostile value in a foreach call\'s URL is not built and sent once per element' => sub {
    $mock->reset;
    my ($r, $doc) = get_json($gw, '/amplify');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{src}{els}, [1 .. 20], 'the source answered (60 KB, under max_response_body)');
    # each element's URL holds the source's 60 KB value, encoded: 20 x 180 KB built, copied and written upstream for one
    # client request (max_items times, up to 10000 times, what a plain call with {src.t} costs; with 8 MiB answers, 24 MB
    # per element). Nothing bounds an upstream URL.
    my ($attempts) = log_line('/amplify') =~ /"name":"els"[^}]*"attempts":(\d+)/;
    is($attempts // -1, 0, 'no element request of 180 KB went out (attempts: ' . ($attempts // 'none') . ')');
};

subtest '-t blames the body, not the path, for a foreach call\'s field in a body' => sub {
    my $file = "$dir/body-field.yaml";
    write_file($file, "listen:\n  - port: 8080\nbackends:\n  svc: { url: 'http://127.0.0.1:9001' }\nroutes:\n"
        . "  - path: /x\n    methods: [POST]\n    calls:\n"
        . "      - { name: src, backend: svc, path: /src }\n"
        . "      - { name: each, backend: svc, path: '/a/{item}', foreach: src.ids }\n"
        . "      - { name: w, backend: svc, method: POST, path: /w, body: { all: '{each.id}' } }\n");
    my $r = run_cmd([$conflux, '-t', '-c', $file], timeout => 10);
    is($r->{code}, 1, 'refused');
    # "{each}" alone is refused with a hint to use "{each.id}", which is then refused as if it were in the path
    like($r->{err}, qr/calls\[2\]\.body: /, 'the error names calls[2].body') or diag($r->{err});
    unlike($r->{err}, qr/go into a URL/, 'and does not speak of a URL');
};

# --- held up -------------------------------------------------------------------------------------------------------

subtest '{items}: a comma inside an element is percent-encoded, not a separator' => sub {
    $mock->reset;
    my ($r, $doc) = get_json($gw, '/comma');
    is($r->{status}, 200, 'status 200');
    my @q = map { $_->{query} } @{ $mock->journal('/bq') };
    is_deeply(\@q, ['ids=a%2Cb,c'], 'one request, "a,b" sent as a%2Cb: two elements, two ids');
    is_deeply($doc->{q}, ['one', 'two'], 'two entries for two elements');
};

subtest 'batches answering out of order are put back in element order' => sub {
    $mock->reset;
    my ($r, $doc) = get_json($gw, '/batchorder');
    is_deeply($doc->{b}, [map { { n => $_ } } 1 .. 6], 'six entries in element order');
    my @by_end = map { $_->{path} } sort { $a->{answered_at} <=> $b->{answered_at} } @{ $mock->journal };
    is_deeply([grep { m{^/bd/} } @by_end], ['/bd/5,6', '/bd/3,4', '/bd/1,2'], 'the upstream answered the last batch first');
};

subtest 'the deadline passes while elements wait on one coalesced flight' => sub {
    $mock->reset;
    my $t0 = time;
    my ($r, $doc) = get_json($gw, '/coalesced-deadline');
    cmp_ok(time - $t0, '<', 0.9, 'answered at the deadline');
    is($r->{status}, 200, 'status 200');
    is_deeply($doc->{els}, [(undef) x 12], 'every element null');
    like(timing_of($r, 'els'), qr/desc="ok 0\/12"/, 'Server-Timing: ok 0/12');
    is($mock->stats->{stubs}{'GET /slow/{id}'}, 1, 'one upstream request for the twelve equal elements');
    ok(wait_until(sub { $mock->stats->{inflight} == 0 }, 3), 'the flight ended (stored for the next request)');
    ($r, $doc) = get_json($gw, '/coalesced-deadline');
    is_deeply($doc->{els}, [({ id => '7' }) x 12], 'the next request is answered from the cache, twelve times');
};

subtest 'a client that goes away mid-fan-out leaves nothing in flight, again and again' => sub {
    $mock->reset;
    # each client leaves once its four first elements are in flight at the mock (not after a fixed time, which on a
    # busy machine could come before any element started)
    for my $i (1 .. 5) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port, Timeout => 5) or die "connect: $!";
        print {$c} "GET /gone HTTP/1.1\r\nHost: x\r\n\r\n";
        ok(wait_until(sub { ($mock->stats->{stubs}{'GET /hang/{id}'} // 0) >= 4 * $i }, 5), "client $i: four elements in flight");
        close $c;
    }
    ok(wait_until(sub { $mock->stats->{inflight} == 0 }, 5), 'nothing left in flight at the mock');
    is($mock->stats->{stubs}{'GET /hang/{id}'}, 20, 'four elements per request, no more started after the client left');
    is(metric($admin, 'conflux_inflight_requests'), 0, 'no client request left in flight');
};

$gw->finish;
$mock->finish;
done_testing();
