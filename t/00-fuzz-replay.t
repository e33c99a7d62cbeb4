# Replays every committed seed corpus (t/fuzz/corpus/NAME) through its harness, built with t/fuzz/replay.c (no libFuzzer),
# each under a timeout (CF_UNIT_TIMEOUT seconds, 60 by default).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $fuzz = "$FindBin::Bin/fuzz";
my $timeout = $ENV{CF_UNIT_TIMEOUT} // 60; # seconds for each harness to replay its corpus
my @harnesses = sort map { m{/(fuzz_\w+)\.c$} } glob("$fuzz/fuzz_*.c");
my %corpus = map { m{/(fuzz_\w+)$} ? ($1 => 1) : () } grep { -d } glob("$fuzz/corpus/*");

ok(@harnesses > 0, 'harnesses found');
is_deeply([sort keys %corpus], \@harnesses, 'a seed corpus for every harness, and a harness for every corpus');

# the last 20 lines of the output: the last "# FILE" is the seed that failed
sub tail {
    my @lines = split /\n/, shift;
    return join "\n", @lines[ ($#lines > 19 ? $#lines - 19 : 0) .. $#lines ];
}

for my $name (@harnesses) {
    subtest $name => sub {
        my $bin = bindir() . "/t/fuzz/$name";
        plan skip_all => "$bin is not built (a CONFLUX_FUZZ build has libFuzzer binaries instead)" unless -x $bin;
        my @files = grep { -f && !m{/\.[^/]*$} } glob("$fuzz/corpus/$name/*");
        ok(@files > 0, 'seeds committed');
        # bounded: a seed that makes the harness hang fails the test instead of hanging the run
        my $run = run_cmd([$bin, "$fuzz/corpus/$name"], timeout => $timeout);
        my $out = $run->{out} . $run->{err};
        is($run->{status}, 0, 'every seed replays without a failed check or a sanitizer report')
            or diag(tail($out));
        like($out, qr/^replayed ${\ scalar @files} inputs$/m, 'all ' . scalar(@files) . ' seeds replayed');
        unlike($out, qr/runtime error|Sanitizer/, 'no sanitizer report');
    };
}

done_testing;
