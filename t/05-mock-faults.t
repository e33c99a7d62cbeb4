# conflux-mock: each fault as a client on a raw socket sees it, and client aborts as the journal records them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Errno qw(ECONNRESET);
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /reset
    body: 'never sent'
    fault: reset
  - path: /slow-reset
    delay: 300ms
    fault: reset
  - path: /empty
    body: 'never sent'
    fault: empty
  - path: /garbage
    fault: garbage
  - path: /truncated
    body: '0123456789012345678901234567890123456789'
    fault: truncated
  - path: /trickle
    body: 'abcdef'
    fault: trickle
  - path: /fast-trickle
    body: 'abcdefghij'
    fault: trickle
    trickle_interval: 20ms
  - path: /hang
    fault: hang
  - path: /slow
    delay: 1s
    body: 'slow'
  - path: /retry
    sequence: [reset, 503, 200]
    body: 'finally'
EOF

# Sends one request on a fresh connection and reads until EOF, error or timeout.
# Returns {data, eof, err (errno on error), times => [arrival time of each read], t0, sock}.
sub raw {
    my ($path, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mock->port, Timeout => 5) or die "connect: $!";
    my $t0 = time;
    print $s "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    my $sel = IO::Select->new($s);
    my %r = (data => '', eof => 0, err => 0, times => [], t0 => $t0, sock => $s);
    my $deadline = $t0 + ($o{timeout} // 3);
    while (time < $deadline) {
        next unless $sel->can_read($deadline - time);
        my $n = sysread($s, my $buf, 65536);
        if (!defined $n) {
            $r{err} = $! + 0;
            last;
        }
        if ($n == 0) {
            $r{eof} = 1;
            last;
        }
        $r{data} .= $buf;
        push @{ $r{times} }, time - $t0;
        last if $o{until} && $r{data} =~ $o{until};
    }
    $r{elapsed} = time - $t0;
    return \%r;
}

sub journal { $mock->journal(@_) }

subtest 'reset: the connection is reset, no byte' => sub {
    my $r = raw('/reset');
    is $r->{err}, ECONNRESET, 'read fails with ECONNRESET';
    is $r->{data}, '', 'nothing received';
    my $s = raw('/slow-reset');
    is $s->{err}, ECONNRESET, 'reset after a delay';
    cmp_ok $s->{elapsed}, '>=', 0.28, 'comes after the delay';
    cmp_ok $s->{elapsed}, '<', 0.8, 'not much later';
};

subtest 'empty: closed without a byte' => sub {
    my $r = raw('/empty');
    ok $r->{eof}, 'clean EOF';
    is $r->{err}, 0, 'no error';
    is $r->{data}, '', 'no byte';
    cmp_ok $r->{elapsed}, '<', 0.5, 'at once';
};

subtest 'garbage: non-HTTP bytes, then close' => sub {
    my $r = raw('/garbage');
    ok $r->{eof} || $r->{err}, 'connection ends';
    cmp_ok length($r->{data}), '>', 0, 'some bytes';
    unlike $r->{data}, qr/^HTTP\//, 'not an HTTP response';
};

subtest 'truncated: fewer bytes than Content-Length, then close' => sub {
    my $r = raw('/truncated');
    ok $r->{eof} || $r->{err}, 'connection ends';
    my ($head, $body) = split /\r\n\r\n/, $r->{data}, 2;
    like $head, qr{^HTTP/1\.1 200 }, 'a status line';
    my ($cl) = $head =~ /^Content-Length:\s*(\d+)/mi;
    is $cl, 40, 'Content-Length promises the whole body';
    cmp_ok length($body // ''), '<', $cl, 'fewer bytes arrive (' . length($body // '') . ')';
    is $body, '01234567890123456789', 'a prefix of the body';
};

subtest 'trickle: one byte per interval' => sub {
    my $r = raw('/trickle', until => qr/abcdef$/);
    my ($head, $body) = split /\r\n\r\n/, $r->{data}, 2;
    like $head, qr/Content-Length:\s*6/i, 'Content-Length of the whole body';
    is $body, 'abcdef', 'the whole body arrives';
    cmp_ok $r->{elapsed}, '>=', 0.45, 'over about 5 x 100ms (' . sprintf('%.2f', $r->{elapsed}) . 's)';
    cmp_ok $r->{elapsed}, '<', 1.2, 'not much longer';
    cmp_ok scalar(@{ $r->{times} }), '>=', 4, 'in several pieces';
    my $f = raw('/fast-trickle', until => qr/abcdefghij$/);
    like $f->{data}, qr/abcdefghij$/, 'trickle_interval: whole body';
    cmp_ok $f->{elapsed}, '>=', 0.17, 'trickle_interval: 9 x 20ms';
    cmp_ok $f->{elapsed}, '<', 0.6, 'trickle_interval: faster than the default';

    # a client leaving in the middle of a trickle (it reads for 150 ms, on purpose) is an abort
    my $c = raw('/trickle', timeout => 0.15);
    close $c->{sock};
    ok wait_until(sub { journal('/trickle')->[-1]{aborted} }, 5), 'trickle cut short: aborted';
    my $j = journal('/trickle');
    ok !$j->[0]{aborted}, 'complete trickle: not aborted';
};

subtest 'hang: never answers; the journal sees the client leave' => sub {
    my $r = raw('/hang', timeout => 1);
    is $r->{data}, '', 'nothing within 1s';
    ok !$r->{eof} && !$r->{err}, 'connection still open';
    my $j = journal('/hang');
    ok !$j->[-1]{aborted}, 'not aborted while the client waits';
    close $r->{sock};
    ok wait_until(sub { journal('/hang')->[-1]{aborted} }, 5), 'aborted once the client closes';
    $j = journal('/hang');
    is $j->[-1]{fault}, 'hang', 'journal names the fault';
    is $j->[-1]{answered_at}, undef, 'never answered';
    is $j->[-1]{status}, undef, 'no status';
};

subtest 'client abort during a delay' => sub {
    my $r = raw('/slow', timeout => 0.2); # an impatient client: it waits 200 ms, on purpose, then leaves
    close $r->{sock};
    ok wait_until(sub { journal('/slow')->[0]{aborted} }, 5), 'the mock sees it leave';
    my $done = raw('/slow', timeout => 3);
    like $done->{data}, qr/slow$/, 'a patient client gets the answer';
    my $j = journal('/slow');
    is scalar(@$j), 2, 'both journaled';
    ok $j->[0]{aborted}, 'the impatient one is aborted';
    is $j->[0]{delay_ms}, 1000, 'its planned delay is journaled';
    is $j->[0]{answered_at}, undef, 'it was never answered';
    cmp_ok $j->[0]{duration_ms}, '<', 600, 'seen when it left, not at the end of the delay';
    ok !$j->[1]{aborted}, 'the patient one is not';
    is $j->[1]{status}, 200, 'and was answered 200';
    my $aborted = grep { $_->{aborted} } @{ $mock->journal };
    is $mock->stats->{aborted}, $aborted, "stats count aborts: $aborted so far, as in the journal";
    cmp_ok $aborted, '>=', 3, 'the trickle, the hang and this one at least';
};

subtest 'sequence can hold faults' => sub {
    is raw('/retry')->{err}, ECONNRESET, '1st call reset';
    my $j = journal('/retry');
    is $j->[0]{fault}, 'reset', 'journal: fault reset';
    is $j->[0]{status}, undef, 'journal: no status for a reset';
    like raw('/retry')->{data}, qr{^HTTP/1\.1 503 }, '2nd call 503';
    like raw('/retry', until => qr/finally/)->{data}, qr{^HTTP/1\.1 200 .*finally$}s, '3rd call 200';
};

subtest 'keep-alive still works after faults elsewhere' => sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mock->port) or die;
    print $s "GET /__mock/respond?body=one HTTP/1.1\r\nHost: x\r\n\r\nGET /__mock/respond?body=two HTTP/1.1\r\nHost: x\r\n\r\n";
    my $data = '';
    my $sel = IO::Select->new($s);
    while ($data !~ /two$/ && $sel->can_read(2)) {
        sysread($s, my $buf, 65536) or last;
        $data .= $buf;
    }
    like $data, qr/one.*HTTP\/1\.1 200 .*two$/s, 'two pipelined requests on one connection';
};

done_testing;
