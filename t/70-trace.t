# Request identity (docs/http.md, "Request identity and tracing"): W3C traceparent continued or started, tracestate
# passed when valid, X-Request-Id kept or generated; on every upstream attempt, in the answer and in the access log.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use Test::More;

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /a
    body: '{"a": 1}'
  - path: /b
    body: '{"b": 2}'
  - path: /flaky
    body: '{"flaky": true}'
    sequence: [503, 200]
  - path: /c
    body: '{"c": 3}'
  - path: /px/{rest*}
    method: '*'
    headers: { X-Request-Id: from-the-backend, Content-Type: text/plain }
    body: 'proxied'
EOF
my $m = $mock->port;
my $log = tmpdir() . '/access.log';

my $gw = spawn_conflux(<<"EOF");
threads: 1
access_log: "$log"
backends:
  api:
    url: http://127.0.0.1:$m
  retrying:
    url: http://127.0.0.1:$m
    retries: 1
routes:
  - { path: /two, calls: [{ name: a, backend: api, path: /a }, { name: b, backend: api, path: /b }] }
  - { path: /retry, calls: [{ name: f, backend: retrying, path: /flaky }] }
  - path: /fwd
    forward_headers: [traceparent, tracestate, X-Request-Id, Accept-Language]
    calls: [{ name: a, backend: api, path: /a }]
  - path: /cached
    forward_headers: [traceparent, X-Request-Id]
    calls: [{ name: c, backend: api, path: /c, cache: 30s }]
  - path: /p/{rest*}
    proxy: api
EOF

my $client_tid = '4bf92f3577b34da6a3ce929d0e0e4736';
my $client_pid = '00f067aa0ba902b7';
my $client_tp = "00-$client_tid-$client_pid-01";

# the traceparent an upstream request carried: (trace-id, parent-id, flags), or () when it has none or a malformed one
sub tp_of {
    my ($entry) = @_;
    my $v = $entry->{headers}{traceparent} // return ();
    return $v =~ /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/ ? ($1, $2, $3) : ();
}

# the access log's line of the request with that X-Request-Id, decoded; undef until it is written
sub log_line {
    my ($rid) = @_;
    return undef unless -s $log;
    for my $l (split /\n/, slurp($log)) {
        my $v = eval { JSON::PP->new->decode($l) } or next;
        return $v if ($v->{request_id} // '') eq $rid;
    }
    return undef;
}

# the first call's span ids in the access log line of that request id (undef when it is not logged)
sub spans_of {
    my ($rid) = @_;
    my $line = log_line($rid) // return undef;
    return $line->{calls}[0]{spans};
}

sub one_request {
    my ($path, $headers) = @_;
    $mock->reset;
    my $r = http_get($gw->url($path), $headers);
    is $r->{status}, 200, "GET $path answers";
    return $r;
}

subtest 'a valid traceparent is continued: same trace-id, a parent-id of its own per call' => sub {
    my $r = one_request('/two', { traceparent => $client_tp });
    my ($ea, $eb) = ($mock->journal('/a')->[0], $mock->journal('/b')->[0]);
    my ($ta, $pa, $fa) = tp_of($ea);
    my ($tb, $pb, $fb) = tp_of($eb);
    is $ta, $client_tid, 'call a carries the client\'s trace-id';
    is $tb, $client_tid, 'call b carries the client\'s trace-id';
    is $fa, '01', 'and the client\'s flags';
    ok defined $pa && $pa ne $client_pid && $pa ne ('0' x 16), 'call a has a parent-id of its own';
    ok defined $pb && $pb ne $client_pid && $pb ne $pa, 'call b has another';
    ok !exists $ea->{headers}{tracestate}, 'no tracestate when the client sent none';
    ok !exists $r->{headers}{traceparent}, 'the answer has no traceparent (only X-Request-Id identifies it)';
    my $rid = $r->{headers}{'x-request-id'};
    ok wait_until(sub { log_line($rid) }), 'the request is logged';
    my %spans = map { $_->{name} => $_->{spans} } @{ (log_line($rid) // {})->{calls} // [] };
    is_deeply \%spans, { a => [$pa], b => [$pb] }, 'each call with the span id its upstream request carried';
};

subtest 'without a traceparent a new trace starts, one per request, not sampled' => sub {
    one_request('/two');
    my ($t1, $p1, $f1) = tp_of($mock->journal('/a')->[0]);
    my ($t1b) = tp_of($mock->journal('/b')->[0]);
    ok defined $t1 && $t1 ne '0' x 32, 'a trace-id was made';
    is $t1b, $t1, 'both calls share it';
    is $f1, '00', 'flags 00';
    one_request('/two');
    my ($t2) = tp_of($mock->journal('/a')->[0]);
    ok defined $t2 && $t2 ne $t1, 'the next request has another trace-id';
};

subtest 'an invalid traceparent is ignored and a new trace starts' => sub {
    my %bad = (
        uppercase         => "00-" . uc($client_tid) . "-$client_pid-01",
        'short trace-id'  => "00-" . substr($client_tid, 1) . "-$client_pid-01",
        'all-zero trace'  => "00-" . ('0' x 32) . "-$client_pid-01",
        'all-zero parent' => "00-$client_tid-" . ('0' x 16) . "-01",
        'version ff'      => "ff-$client_tid-$client_pid-01",
        'version 01'      => "01-$client_tid-$client_pid-01",
        'trailing bytes'  => "$client_tp-",
        'flags uppercase' => "00-$client_tid-$client_pid-0A",
        'a space inside'  => "00-$client_tid $client_pid-01",
        'garbage'         => 'hello, world',
        'non-hex'         => "00-${\ substr($client_tid, 0, 31)}g-$client_pid-01",
    );
    for my $name (sort keys %bad) {
        $mock->reset;
        my $r = http_get($gw->url('/two'), { traceparent => $bad{$name}, tracestate => 'vendor=x' });
        is $r->{status}, 200, "$name: answered";
        my $e = $mock->journal('/a')->[0];
        my ($t, $p, $f) = tp_of($e);
        ok defined $t && $t ne $client_tid, "$name: a new trace-id";
        is $f, '00', "$name: flags 00";
        ok !exists $e->{headers}{tracestate}, "$name: the tracestate goes with it";
    }
    $mock->reset;
    my $r = http_get($gw->url('/two'), { traceparent => [$client_tp, $client_tp] });
    my ($t) = tp_of($mock->journal('/a')->[0]);
    ok defined $t && $t ne $client_tid, 'two traceparent fields: a new trace';
};

subtest 'tracestate: passed when valid and bounded, dropped otherwise' => sub {
    my %cases = (
        'two members'        => ['rojo=00f067aa0ba902b7, congo=t61rcWkgMzE', 1],
        'multi-tenant key'   => ['t1@sys=v,k=v', 1],
        'empty members'      => ['a=1,,b=2', 1],
        '512 bytes'          => ['a=' . ('v' x 254) . ',b=' . ('v' x 253), 1],
        '513 bytes'          => ['a=' . ('v' x 254) . ',b=' . ('v' x 254), 0],
        'a value over 256'   => ['k=' . ('v' x 257), 0],
        '32 members'         => [join(',', map {"k$_=v"} 1 .. 32), 1],
        '33 members'         => [join(',', map {"k$_=v"} 1 .. 33), 0],
        'uppercase key'      => ['Rojo=1', 0],
        'no equals'          => ['rojo', 0],
        'a quote-free comma' => ['k=a=b', 0],
    );
    for my $name (sort keys %cases) {
        my ($value, $kept) = @{ $cases{$name} };
        one_request('/two', { traceparent => $client_tp, tracestate => $value });
        my $e = $mock->journal('/a')->[0];
        if ($kept) {
            is $e->{headers}{tracestate}, $value, "$name: passed as sent";
        } else {
            ok !exists $e->{headers}{tracestate}, "$name: dropped";
        }
        my ($t) = tp_of($e);
        is $t, $client_tid, "$name: the trace is continued either way";
    }
};

subtest 'a retry is a span of its own' => sub {
    my $r = one_request('/retry', { traceparent => $client_tp });
    like $r->{headers}{'server-timing'}, qr/attempts=2/, 'two attempts';
    my $j = $mock->journal('/flaky');
    is scalar @$j, 2, 'two upstream requests';
    my ($t1, $p1) = tp_of($j->[0]);
    my ($t2, $p2) = tp_of($j->[1]);
    is $t1, $client_tid, 'the first attempt continues the trace';
    is $t2, $client_tid, 'so does the retry';
    ok defined $p1 && defined $p2 && $p1 ne $p2, 'with another parent-id';
    is $j->[1]{headers}{'x-request-id'}, $r->{headers}{'x-request-id'}, 'and the same X-Request-Id';
    my $rid = $r->{headers}{'x-request-id'};
    ok wait_until(sub { log_line($rid) }), 'the request is logged';
    my $line = log_line($rid) // {};
    is $line->{trace_id}, $client_tid, 'with the trace-id';
    is_deeply $line->{calls}[0]{spans}, [$p1, $p2], 'and both attempts\' span ids, in order';
};

subtest 'X-Request-Id: a sane one is kept, in the answer, upstream and in the access log' => sub {
    my $id = 'req-42.a_b:C';
    my $r = one_request('/two', { 'X-Request-Id' => $id, traceparent => $client_tp });
    is $r->{headers}{'x-request-id'}, $id, 'the answer carries it';
    is $mock->journal('/a')->[0]{headers}{'x-request-id'}, $id, 'call a sent it';
    is $mock->journal('/b')->[0]{headers}{'x-request-id'}, $id, 'call b sent it';
    ok wait_until(sub { -s $log && slurp($log) =~ /"request_id":"\Q$id\E","trace_id":"$client_tid"/ }),
        'the access log has the request id and the trace-id';
    my $max = 'x' x 128;
    $r = one_request('/two', { 'X-Request-Id' => $max });
    is $r->{headers}{'x-request-id'}, $max, '128 characters are kept';
};

subtest 'X-Request-Id: a hostile or absent one is replaced by a generated one' => sub {
    my %bad = (
        '1000 bytes' => 'a' x 1000,
        '129 bytes'  => 'a' x 129,
        'spaces'     => 'a b',
        'quotes'     => '"abc"',
        'slash'      => 'a/b',
        'json'       => '{"x":1}',
        'empty'      => '',
    );
    my %seen;
    for my $name (sort keys %bad) {
        my $r = one_request('/two', { 'X-Request-Id' => $bad{$name} });
        my $id = $r->{headers}{'x-request-id'} // '';
        like $id, qr/^[0-9a-f]{32}$/, "$name: replaced";
        is $mock->journal('/a')->[0]{headers}{'x-request-id'}, $id, "$name: the generated one goes upstream";
        $seen{$id}++;
    }
    # HTTP::Tiny refuses to send a non-ASCII field: over a raw connection
    $mock->reset;
    my $u = raw_request($gw->port, "GET /two HTTP/1.1\r\nHost: x\r\nX-Request-Id: caf\xc3\xa9\r\nConnection: close\r\n\r\n");
    is $u->{status}, 200, 'unicode: answered';
    like $u->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}$/, 'unicode: replaced';
    is $mock->journal('/a')->[0]{headers}{'x-request-id'}, $u->{headers}{'x-request-id'}, 'unicode: the generated one goes upstream';
    $seen{ $u->{headers}{'x-request-id'} }++;
    my $r = one_request('/two');
    like $r->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}$/, 'absent: generated';
    $seen{ $r->{headers}{'x-request-id'} }++;
    is scalar(keys %seen), scalar(keys %bad) + 2, 'each request got its own';
    ok wait_until(sub { slurp($log) =~ /"request_id":"$r->{headers}{'x-request-id'}"/ }), 'the generated one is logged';
    $r = http_get($gw->url('/nowhere'), { 'X-Request-Id' => 'lost-1' });
    is $r->{status}, 404, 'a request with no route';
    is $r->{headers}{'x-request-id'}, 'lost-1', 'still carries its id';
};

subtest 'forward_headers naming them: one of each goes upstream, conflux\'s' => sub {
    my $r = one_request('/fwd', { traceparent => $client_tp, tracestate => 'a=1', 'X-Request-Id' => 'fwd-1',
                                   'Accept-Language' => 'fr' });
    my $e = $mock->journal('/a')->[0];
    my ($t, $p) = tp_of($e);
    is $t, $client_tid, 'one valid traceparent (two would be joined and not parse)';
    isnt $p, $client_pid, 'conflux\'s span, not the client\'s';
    is $e->{headers}{tracestate}, 'a=1', 'one tracestate';
    is $e->{headers}{'x-request-id'}, 'fwd-1', 'one X-Request-Id';
    is $e->{headers}{'accept-language'}, 'fr', 'other forwarded headers still go';
};

subtest 'a cached call hits across requests of different traces and ids' => sub {
    $mock->reset;
    for my $i (1 .. 3) {
        my $tid = sprintf('%032x', $i);
        my $r = http_get($gw->url('/cached'), { traceparent => "00-$tid-$client_pid-01", 'X-Request-Id' => "c-$i" });
        is $r->{status}, 200, "request $i answered";
        like $r->{headers}{'server-timing'}, $i == 1 ? qr/desc="miss"/ : qr/desc="hit"/, "request $i: " . ($i == 1 ? 'a miss' : 'a hit');
    }
    is scalar @{ $mock->journal('/c') }, 1, 'one upstream request in all';
    my (undef, $miss_span) = tp_of($mock->journal('/c')->[0]);
    ok wait_until(sub { log_line('c-3') }), 'logged';
    is_deeply spans_of('c-1'), [$miss_span], 'the miss lists the span of its upstream request';
    is_deeply spans_of('c-2'), [], 'a hit lists none';
};

subtest 'a proxy route: the client\'s traceparent is replaced by the continued one' => sub {
    my $r = one_request('/p/px/x', { traceparent => $client_tp, tracestate => 'a=1', 'X-Request-Id' => 'px-1' });
    is $r->{body}, 'proxied', 'proxied';
    my $e = $mock->journal('/px/x')->[0];
    my ($t, $p) = tp_of($e);
    is $t, $client_tid, 'one traceparent, the trace continued';
    isnt $p, $client_pid, 'with conflux\'s span';
    is $e->{headers}{tracestate}, 'a=1', 'tracestate passed';
    is $e->{headers}{'x-request-id'}, 'px-1', 'X-Request-Id sent';
    is $r->{headers}{'x-request-id'}, 'px-1', 'the answer has conflux\'s X-Request-Id, not the backend\'s';
    ok wait_until(sub { log_line('px-1') }), 'logged';
    is_deeply spans_of('px-1'), [$p], 'with the span of the proxied request';
    $r = one_request('/p/px/y', { traceparent => 'garbage' });
    ($t) = tp_of($mock->journal('/px/y')->[0]);
    ok defined $t && $t ne $client_tid, 'an invalid one is replaced by a new trace';
};

done_testing;
