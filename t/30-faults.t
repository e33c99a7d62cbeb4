# Timeouts and faults: each fails only its own call; required failures map to the documented statuses.
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
  - path: /ok
    body: '{"ok": true}'
  - path: /slow
    body: '{"slow": true}'
    delay: 2s
  - path: /notfound
    status: 404
    body: '{"error": "no such user"}'
  - path: /boom
    status: 500
    body: '{"error": "boom"}'
  - path: /notjson
    body: 'this is not json'
    headers: { Content-Type: text/plain }
  - path: /big
    body: '{"pad": "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}'
  - path: /fault/{kind}
    body: '{"never": "seen, the fault comes first"}'
    fault: reset
EOF
my $m = $mock->port;
# one stub per fault kind, added at runtime through the mock's admin API
for my $kind (qw(reset empty garbage truncated trickle hang)) {
    my $r = http_request('POST', $mock->url('/__mock/stubs'), { 'Content-Type' => 'application/json' },
        qq({"path": "/fault/$kind", "body": "{\\"x\\": \\"0123456789012345678901234567890123456789\\"}", "fault": "$kind"}));
    die "cannot add stub: $r->{status} $r->{body}" unless $r->{status} == 200;
}

my $gw = spawn_conflux(<<"EOF");
limits:
  max_response_body: 64
backends:
  svc:
    url: http://127.0.0.1:$m
    timeout: 1s
  down:
    url: http://127.0.0.1:1
    connect_timeout: 200ms
routes:
  - path: /optional-timeout
    calls:
      - { name: fast, backend: svc, path: /ok }
      - { name: slow, backend: svc, path: /slow, timeout: 300ms }
  - path: /timeout-is-deadline
    calls:
      - { name: slow, backend: svc, path: /slow, timeout: 300ms }
  - path: /required-timeout
    calls:
      - { name: fast, backend: svc, path: /ok }
      - { name: slow, backend: svc, path: /slow, timeout: 300ms, required: true }
  - path: /required/{stub}
    calls:
      - { name: fast, backend: svc, path: /ok }
      - { name: main, backend: svc, path: "/{stub}", required: true }
  - path: /optional/{stub}
    calls:
      - { name: fast, backend: svc, path: /ok }
      - { name: other, backend: svc, path: "/{stub}" }
  - path: /fault/{kind}
    calls:
      - { name: fast, backend: svc, path: /ok }
      - { name: bad, backend: svc, path: "/fault/{kind}", timeout: 500ms }
  - path: /deadline
    deadline: 400ms
    calls:
      - { name: fast, backend: svc, path: /ok }
      - { name: slow, backend: svc, path: /slow, timeout: 3s }
  - path: /disconnect
    calls:
      - { name: slow, backend: svc, path: /slow, timeout: 3s }
  - path: /down
    calls:
      - { name: fast, backend: svc, path: /ok }
      - { name: gone, backend: down, path: /x }
EOF

subtest 'an optional call that times out is null and the answer says so' => sub {
    my $r = http_get($gw->url('/optional-timeout'));
    is $r->{status}, 200, 'still 200';
    is $r->{body}, '{"fast":{"ok":true},"slow":null}', 'slow is null';
    cmp_ok $r->{elapsed}, '>=', 0.29, 'waited for the timeout';
    cmp_ok $r->{elapsed}, '<', 0.8, 'cut at the call timeout (300 ms), not the upstream delay (2 s)';
    is $r->{headers}{'conflux-complete'}, 'false', 'Conflux-Complete: false';
    is $r->{headers}{'proxy-status'}, 'conflux; error=http_response_timeout; details="slow"', 'Proxy-Status';
    my ($dur) = $r->{headers}{'server-timing'} =~ /slow;dur=([\d.]+);desc="timeout"/;
    ok defined $dur && $dur > 280 && $dur < 600, "Server-Timing shows the timeout after about 300 ms (${\($dur // 'none')})";
};

subtest 'a required call that times out gives 504' => sub {
    my $r = http_get($gw->url('/required-timeout'));
    is $r->{status}, 504, 'status 504';
    is $r->{body}, '{"error":"timeout","call":"slow","status":null}', 'error body';
    cmp_ok $r->{elapsed}, '<', 0.8, 'answered at the timeout';
};

subtest 'a required call: upstream 4xx passes through, 5xx and bad JSON give 502' => sub {
    my $r = http_get($gw->url('/required/notfound'));
    is $r->{status}, 404, 'upstream 404 gives 404';
    is $r->{body}, '{"error":"status_404","call":"main","status":404}', '404 body';
    $r = http_get($gw->url('/required/boom'));
    is $r->{status}, 502, 'upstream 500 gives 502';
    is $r->{body}, '{"error":"status_500","call":"main","status":500}', '500 body';
    like $r->{headers}{'proxy-status'}, qr/received-status=500; details="main"/, 'Proxy-Status has the received status';
    $r = http_get($gw->url('/required/notjson'));
    is $r->{status}, 502, 'invalid JSON gives 502';
    is decode_json_ok($r->{body})->{error}, 'invalid_json', 'reason invalid_json';
};

subtest 'an optional call that fails is null, whatever the failure' => sub {
    for my $case ([notfound => 'status_404'], [boom => 'status_500'], [notjson => 'invalid_json'], [big => 'too_large']) {
        my ($stub, $reason) = @$case;
        my $r = http_get($gw->url("/optional/$stub"));
        is $r->{status}, 200, "$stub: 200";
        is $r->{body}, '{"fast":{"ok":true},"other":null}', "$stub: other is null";
        like $r->{headers}{'server-timing'}, qr/other;dur=[\d.]+;desc="$reason"/, "$stub: reason $reason";
    }
};

subtest 'every mock fault fails only its call' => sub {
    my %want = (reset => qr/^(reset|bad_response)$/, empty => qr/^(reset|bad_response)$/, garbage => qr/^bad_response$/,
                truncated => qr/^(reset|bad_response)$/, trickle => qr/^timeout$/, hang => qr/^timeout$/);
    for my $kind (sort keys %want) {
        my $r = http_get($gw->url("/fault/$kind"));
        is $r->{status}, 200, "$kind: 200";
        is $r->{body}, '{"fast":{"ok":true},"bad":null}', "$kind: only the faulty call is null";
        my ($reason) = $r->{headers}{'server-timing'} =~ /bad;dur=[\d.]+;desc="([^"]+)"/;
        like $reason, $want{$kind}, "$kind: reason $reason";
        cmp_ok $r->{elapsed}, '<', 0.9, "$kind: answered within the 500 ms call timeout (+ margin)";
    }
};

subtest 'a trickling upstream is cut at its timeout even though bytes keep coming' => sub {
    my $r = http_get($gw->url('/fault/trickle'));
    cmp_ok $r->{elapsed}, '>=', 0.45, 'ran until the timeout';
    cmp_ok $r->{elapsed}, '<', 0.9, 'and no longer';
};

subtest 'the route deadline cuts calls still running' => sub {
    my $r = http_get($gw->url('/deadline'));
    is $r->{status}, 200, '200 with what arrived';
    is $r->{body}, '{"fast":{"ok":true},"slow":null}', 'slow cut';
    cmp_ok $r->{elapsed}, '>=', 0.39, 'waited for the deadline';
    cmp_ok $r->{elapsed}, '<', 0.8, 'answered at the 400 ms deadline, not the 3 s call timeout';
    like $r->{headers}{'server-timing'}, qr/slow;dur=[\d.]+;desc="deadline"/, 'reason deadline';
};

subtest 'a call whose timeout ends with the default deadline timed out (not "deadline")' => sub {
    # the default deadline is the longest chain of timeouts, here the one call's 300ms: both timers end together
    for my $i (1 .. 5) {
        my $r = http_get($gw->url('/timeout-is-deadline'));
        is $r->{status}, 200, "request $i: status 200";
        like $r->{headers}{'server-timing'}, qr/slow;dur=[\d.]+;desc="timeout"/, "request $i: reason timeout";
    }
};

subtest 'a refused connection fails only its call' => sub {
    my $r = http_get($gw->url('/down'));
    is $r->{status}, 200, 'status 200';
    is $r->{body}, '{"fast":{"ok":true},"gone":null}', 'gone is null';
    like $r->{headers}{'proxy-status'}, qr/error=connection_refused; details="gone"/, 'Proxy-Status connection_refused';
};

# the journal's /slow entries that the mock saw abandoned
sub slow_aborted { grep { $_->{aborted} } @{ $mock->journal('/slow') } }

subtest 'a client that goes away cancels its upstream exchanges' => sub {
    $mock->reset;
    # the slow call would run 2 s; the client leaves once it is out
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die $!;
    print $s "GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n";
    ok(wait_until(sub { @{ $mock->journal('/slow') } == 1 }, 5), 'the slow call reached the upstream');
    # pacing, not a wait for a result: conflux arms its disconnect watch 25 ms after a request begins, which cannot be
    # seen from outside; this client leaves after that (the next subtest leaves before)
    sleep 0.05;
    close $s;
    my $t0 = time;
    ok(wait_until(\&slow_aborted, 2), 'the mock saw the upstream exchange abandoned');
    cmp_ok time - $t0, '<', 0.5, 'at once, not when the upstream would have answered (2 s)';
    is http_get($gw->url('/optional/notfound'))->{status}, 200, 'conflux still serves';
};

subtest 'a client that leaves before the watch is armed is noticed when it arms' => sub {
    $mock->reset;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port) or die $!;
    print $s "GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n";
    close $s;    # at once: well within the 25 ms before the watch arms
    my $t0 = time;
    ok(wait_until(\&slow_aborted, 2), 'the mock saw the upstream exchange abandoned');
    cmp_ok time - $t0, '<', 0.5, 'soon after the watch armed, not when the upstream would have answered (2 s)';
};

done_testing;
