# Span export (docs/operations.md, "Span export (OTLP)"): sampled requests' spans POSTed as OTLP/HTTP JSON to a
# collector (conflux-mock here, its journal holding the batches); sampling by tracing.sample or the client's flag; a
# collector that is down or slow costs requests nothing, and what is lost is counted in /metrics.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /a
    body: '{"a": 1}'
  - path: /flaky
    body: '{"flaky": true}'
    sequence: [503, 200]
  - path: /v1/traces
    method: POST
    body: '{}'
  - path: /slow/v1/traces
    method: POST
    delay: 2s
    body: '{}'
EOF
my $m = $mock->port;

# a gateway whose tracing: is $tracing (a flow mapping's inside)
sub gateway {
    my ($tracing) = @_;
    my $admin = empty_port();
    return spawn_conflux(<<"EOF");
threads: 1
admin: 127.0.0.1:$admin
tracing: { $tracing }
backends: { api: { url: "http://127.0.0.1:$m" }, retrying: { url: "http://127.0.0.1:$m", retries: 1 } }
routes:
  - path: "/users/{id}"
    calls: [{ name: a, backend: api, path: /a }]
  - path: /retry
    calls: [{ name: f, backend: retrying, path: /flaky }]
EOF
}

my $client_tid = '4bf92f3577b34da6a3ce929d0e0e4736';
my $client_pid = '00f067aa0ba902b7';

# every span the collector got so far: a list of [span, batch] (the batch decoded whole)
sub exported_spans {
    my ($path) = @_;
    my @out;
    for my $e (@{ $mock->journal($path // '/v1/traces') }) {
        my $doc = eval { JSON::PP->new->decode($e->{body} // '') } or next;
        for my $rs (@{ $doc->{resourceSpans} // [] }) {
            for my $ss (@{ $rs->{scopeSpans} // [] }) {
                push @out, [$_, $doc, $e] for @{ $ss->{spans} // [] };
            }
        }
    }
    return @out;
}

# the spans of one trace, once the collector has the request's span and `$n` spans in all (undef until then)
sub trace_spans {
    my ($tid, $n) = @_;
    my @s = grep { $_->[0]{traceId} eq $tid } exported_spans();
    return @s >= $n ? \@s : undef;
}

sub attrs {
    my ($span) = @_;
    return { map { $_->{key} => (values %{ $_->{value} })[0] } @{ $span->{attributes} // [] } };
}

# the traceparent the upstream saw on its latest request to $path: (trace-id, parent-id, flags)
sub upstream_tp {
    my ($path) = @_;
    my $j = $mock->journal($path);
    my $v = @$j ? $j->[-1]{headers}{traceparent} // '' : '';
    return $v =~ /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/ ? ($1, $2, $3) : ();
}

subtest 'sample 1: a request span and an attempt span, in OTLP/HTTP JSON, linked to what the upstream saw' => sub {
    $mock->reset;
    my $gw = gateway("otlp: http://127.0.0.1:$m/v1/traces, sample: 1, delay: 20ms, service_name: edge");
    my $r = http_get($gw->url('/users/7?x=1'));
    is $r->{status}, 200, 'the request is answered';
    my ($tid, $pid, $flags) = upstream_tp('/a');
    is $flags, '01', 'a new trace is sampled at sample 1: the upstream sees flags 01';
    my $spans = wait_until(sub { trace_spans($tid, 2) });
    ok $spans, 'the collector got the spans of that trace' or return;
    my $e = $spans->[0][2];
    is $e->{method}, 'POST', 'POSTed';
    like $e->{headers}{'content-type'}, qr{^application/json}, 'as application/json';
    my $doc = $spans->[0][1];
    is_deeply [sort keys %$doc], ['resourceSpans'], 'top level: resourceSpans';
    my $rs = $doc->{resourceSpans}[0];
    is_deeply $rs->{resource}{attributes}, [{ key => 'service.name', value => { stringValue => 'edge' } }],
        'resource.attributes: service.name';
    is $rs->{scopeSpans}[0]{scope}{name}, 'conflux', 'scopeSpans[].scope.name';
    ok length($rs->{scopeSpans}[0]{scope}{version} // ''), 'scopeSpans[].scope.version';
    my ($server) = grep { $_->[0]{kind} == 2 } @$spans;
    my ($client) = grep { $_->[0]{kind} == 3 } @$spans;
    ok $server && $client, 'one SERVER span (kind 2), one CLIENT span (kind 3)' or return;
    ($server, $client) = ($server->[0], $client->[0]);
    like $server->{spanId}, qr/^[0-9a-f]{16}$/, 'spanId: 16 lowercase hex digits (not base64)';
    is $server->{traceId}, $tid, 'traceId: the trace-id the upstream saw, 32 lowercase hex digits';
    ok !exists $server->{parentSpanId}, 'a trace conflux started: the request span is the root';
    is $server->{name}, 'GET /users/{id}', 'the request span is named after the route pattern';
    like $server->{startTimeUnixNano}, qr/^\d{19}$/, 'startTimeUnixNano: a string of Unix nanoseconds';
    ok abs($server->{startTimeUnixNano} / 1e9 - time) < 60, 'about now';
    ok $server->{endTimeUnixNano} >= $server->{startTimeUnixNano}, 'endTimeUnixNano after it';
    my $sa = attrs($server);
    is $sa->{'http.request.method'}, 'GET', 'http.request.method';
    is $sa->{'http.route'}, '/users/{id}', 'http.route';
    is $sa->{'url.path'}, '/users/7', 'url.path, without the query';
    is $sa->{'http.response.status_code'}, '200', 'http.response.status_code (an intValue, a string)';
    is $sa->{'conflux.request_id'}, $r->{headers}{'x-request-id'}, 'conflux.request_id: the answer\'s X-Request-Id';
    is $client->{spanId}, $pid, 'the attempt span\'s spanId is the parent-id the upstream saw in traceparent';
    is $client->{parentSpanId}, $server->{spanId}, 'its parent is the request span';
    is $client->{name}, 'a', 'named after the call';
    ok $client->{startTimeUnixNano} >= $server->{startTimeUnixNano} && $client->{endTimeUnixNano} <= $server->{endTimeUnixNano},
        'within the request span';
    my $ca = attrs($client);
    is $ca->{'conflux.backend'}, 'api', 'conflux.backend';
    is $ca->{'http.response.status_code'}, '200', 'the attempt\'s status';
    is $ca->{'conflux.attempt'}, 'first', 'conflux.attempt: first';
    ok !exists $client->{status} && !exists $server->{status}, 'status unset on success';
    ok wait_until(sub { $gw->metric('conflux_trace_spans_total{result="exported"}') >= 2 }), 'exported spans counted';
};

subtest 'a retried call: one span per attempt, the retry marked, the failed attempt an error' => sub {
    $mock->reset;
    my $gw = gateway("otlp: http://127.0.0.1:$m/v1/traces, sample: 1, delay: 20ms");
    is http_get($gw->url('/retry'))->{status}, 200, 'the retry answers';
    my @seen = map { $_->{headers}{traceparent} =~ /-([0-9a-f]{16})-/ ? $1 : '' } @{ $mock->journal('/flaky') };
    is scalar(@seen), 2, 'the upstream saw two attempts';
    my ($tid) = upstream_tp('/flaky');
    my $spans = wait_until(sub { trace_spans($tid, 3) });
    ok $spans, 'three spans exported' or return;
    my ($server) = map { $_->[0] } grep { $_->[0]{kind} == 2 } @$spans;
    my @clients = sort { $a->{startTimeUnixNano} <=> $b->{startTimeUnixNano} } map { $_->[0] } grep { $_->[0]{kind} == 3 } @$spans;
    is_deeply [map { $_->{spanId} } @clients], \@seen, 'their span ids are those the upstream saw, in order';
    is_deeply [map { $_->{parentSpanId} } @clients], [($server->{spanId}) x 2], 'both children of the request span';
    my ($a1, $a2) = map { attrs($_) } @clients;
    is $a1->{'http.response.status_code'}, '503', 'the first got 503';
    is $clients[0]{status}{code}, 2, 'an error (status.code 2)';
    is $a1->{'error.type'}, 'status_503', 'error.type';
    is $a2->{'conflux.attempt'}, 'retry', 'the second is marked a retry';
    ok !exists $clients[1]{status}, 'and succeeded';
};

subtest 'sample 0 exports nothing; a continued sampled traceparent is exported anyway' => sub {
    $mock->reset;
    my $gw = gateway("otlp: http://127.0.0.1:$m/v1/traces, delay: 20ms");
    is http_get($gw->url('/users/1'))->{status}, 200, 'a request without traceparent';
    my ($tid0, undef, $f0) = upstream_tp('/a');
    is $f0, '00', 'sample defaults to 0: flags 00 upstream';
    is http_get($gw->url('/users/2'), { traceparent => "00-$client_tid-$client_pid-00" })->{status}, 200,
        'a continued unsampled trace';
    my $tid1 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    is http_get($gw->url('/users/3'), { traceparent => "00-$tid1-$client_pid-00" })->{status}, 200, 'another';
    is http_get($gw->url('/users/4'), { traceparent => "00-$client_tid-$client_pid-01", tracestate => 'k=v' })->{status},
        200, 'a continued sampled trace';
    my (undef, undef, $f1) = upstream_tp('/a');
    is $f1, '01', 'its flags go upstream';
    # the exporter sends in order: once the sampled request's spans are in, the others would be too
    my $spans = wait_until(sub { trace_spans($client_tid, 2) });
    ok $spans, 'the sampled one is exported' or return;
    my ($server) = map { $_->[0] } grep { $_->[0]{kind} == 2 } @$spans;
    is $server->{parentSpanId}, $client_pid, 'the request span\'s parent is the client\'s parent-id';
    is $server->{traceState}, 'k=v', 'with the client\'s tracestate';
    is scalar(@$spans), 2, 'only its own spans: the unsampled request of the same trace-id sent none';
    is scalar(grep { $_->[0]{traceId} eq $tid0 || $_->[0]{traceId} eq $tid1 } exported_spans()), 0,
        'nothing of the unsampled traces';
};

subtest 'a full batch goes at once, without waiting for delay' => sub {
    $mock->reset;
    my $gw = gateway("otlp: http://127.0.0.1:$m/v1/traces, sample: 1, delay: 30s, batch: 4");
    is http_get($gw->url("/users/$_"))->{status}, 200, "request $_" for 1 .. 2;
    my $t0 = time;
    ok wait_until(sub { exported_spans() >= 4 }, 10), 'the 4 spans of two requests make a batch, sent at once';
    ok time - $t0 < 10, 'long before the 30s delay';
    is scalar(@{ $mock->journal('/v1/traces') }), 1, 'in one request';
};

subtest 'a reload applies sample and the collector URL' => sub {
    $mock->reset;
    my $gw = gateway("otlp: http://127.0.0.1:$m/elsewhere, delay: 20ms");
    is http_get($gw->url('/users/1'))->{status}, 200, 'before: sample 0';
    my (undef, undef, $f0) = upstream_tp('/a');
    is $f0, '00', 'flags 00';
    my $yaml = CfTest::slurp($gw->{config});
    $yaml =~ s{otlp: http://127.0.0.1:$m/elsewhere}{otlp: http://127.0.0.1:$m/v1/traces, sample: 1} or die;
    write_file($gw->{config}, $yaml);
    $gw->signal('HUP');
    ok wait_until(sub { $gw->log_text =~ /conflux: reloaded / }), 'reloaded';
    is http_get($gw->url('/users/2'))->{status}, 200, 'after';
    my ($tid, undef, $f1) = upstream_tp('/a');
    is $f1, '01', 'the new sample applies: flags 01';
    ok wait_until(sub { trace_spans($tid, 2) }), 'and its spans reach the new URL';
    is scalar(@{ $mock->journal('/elsewhere') }), 0, 'nothing went to the old one';
};

subtest 'a collector that is down: requests as fast, the failures counted' => sub {
    my $closed = empty_port();
    my $gw = gateway("otlp: http://127.0.0.1:$closed/v1/traces, sample: 1, delay: 1ms, batch: 1, timeout: 1s");
    my @slow = grep { $_->{status} != 200 || $_->{elapsed} > 0.5 } map { http_get($gw->url("/users/$_")) } 1 .. 20;
    is scalar(@slow), 0, '20 requests answered 200, each within 0.5s';
    ok wait_until(sub { $gw->metric('conflux_trace_spans_total{result="failed"}') >= 2 }), 'the failed batches are counted';
    is $gw->metric('conflux_trace_spans_total{result="exported"}'), 0, 'nothing counted as exported';
    ok wait_until(sub { $gw->log_text =~ /tracing\.otlp .*spans are dropped until the collector answers/ }),
        'said on stderr';
    is scalar(() = $gw->log_text =~ /spans are dropped until/g), 1, 'once for the streak';
};

subtest 'a slow collector: request latency unaffected; a full queue drops and counts' => sub {
    $mock->reset;
    my $gw = gateway("otlp: http://127.0.0.1:$m/slow/v1/traces, sample: 1, delay: 1ms, batch: 2, queue: 4, timeout: 3s");
    my @r = map { http_get($gw->url("/users/$_")) } 1 .. 20;
    is scalar(grep { $_->{status} == 200 } @r), 20, 'all answered';
    my ($max) = sort { $b <=> $a } map { $_->{elapsed} } @r;
    ok $max < 1, "the slowest took ${max}s, far below the collector's 2s";
    ok wait_until(sub { $mock->journal('/slow/v1/traces') && @{ $mock->journal('/slow/v1/traces') } >= 1 }),
        'the collector got a batch';
    ok $gw->metric('conflux_trace_spans_total{result="dropped"}') >= 20, 'the spans that did not fit the queue are dropped and counted';
    my $t0 = time;
    $gw->stop;
    ok time - $t0 < 6, 'the stop is bounded with an export under way';
};

done_testing;
