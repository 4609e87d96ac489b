# The paper-length runs from the official initialization (seed 42): StableMax with the accurate
# gradient and the float64-softmax control arm. Run from the repository root:
#   gnuplot docs/results/grokking/plot_80k.gp
set terminal pngcairo size 1100,900 font ",10"
set output 'docs/img/grokking_80k_init42.png'
set datafile separator ','
sm = 'docs/results/grokking/stablemax_80k_init42.csv'
s64 = 'docs/results/grokking/softmax64_80k_init42.csv'
set multiplot layout 3,1 title "(a + b) mod 113, official split and initialization (seed 42), 80,000 epochs: StableMax cross-entropy vs float64 softmax"
set key top right
set logscale y
set format y "10^{%L}"
set ylabel 'training loss'
plot sm using 1:2 with lines lw 1.5 title 'StableMax', \
     s64 using 1:2 with lines lw 1.5 title 'softmax, float64 loss'
set ylabel 'median margin z_y - max_{j!=y} z_j'
set yrange [1:*]
plot sm using 1:($8 > 1 ? $8 : 1/0) with lines lw 1.5 title 'StableMax', \
     s64 using 1:($8 > 1 ? $8 : 1/0) with lines lw 1.5 title 'softmax, float64 loss'
unset logscale y
set format y "%g"
set yrange [0:1.05]
set key at graph 0.99, graph 0.62 right opaque
set ylabel 'fraction'
set xlabel 'epoch'
plot sm using 1:4 with lines lw 1.5 title 'test accuracy, StableMax', \
     sm using 1:9 with lines lw 1 dt 2 title 'StableMax: share with {/Symbol S}_{j!=y}s_j/S < 2^{-23}', \
     s64 using 1:4 with lines lw 1.5 title 'test accuracy, softmax float64', \
     s64 using 1:9 with lines lw 1 dt 2 title 'softmax float64: share with non-label mass < 2^{-23}'
unset multiplot

# Test accuracy of the three StableMax runs with the accurate gradient: two official
# initializations and our own draw.
set output 'docs/img/grokking_stablemax_80k_seeds.png'
set terminal pngcairo size 1000,450 font ",10"
set title "StableMax, 80,000 epochs, accurate gradient: test accuracy per initialization"
set key top left
set yrange [0:1.05]
set ylabel 'test accuracy'
set xlabel 'epoch'
plot sm using 1:4 with lines lw 1.5 title 'official init, seed 42', \
     'docs/results/grokking/stablemax_80k_init43.csv' using 1:4 with lines lw 1.5 title 'official init, seed 43', \
     'docs/results/grokking/stablemax_80k_own42.csv' using 1:4 with lines lw 1.5 title 'own init, seed 42'
