# Multi-sample dropout, means over seeds 1-3: eval-mode training loss and validation error per
# epoch. Run from the repository root: gnuplot docs/results/multi_sample_dropout/plot.gp
set terminal pngcairo size 1000,700 font ",10"
set output 'docs/img/multi_sample_dropout_curves.png'
set datafile separator ','
d = 'docs/results/multi_sample_dropout/'
steps_per_epoch = 429.0   # 55,000 images, batch 128, the last partial batch dropped
set multiplot layout 2,1 title "Multi-sample dropout on Fashion-MNIST, MLP 784-512-512 + head, 15 epochs, cosine decay (mean of 3 seeds)"
set key top right
set logscale y
set ylabel 'eval-mode training loss'
set grid
set xrange [0:15]
plot d.'loss_by_step.csv' using ($1/steps_per_epoch):2 with lines lw 1.5 title 'no dropout', \
     '' using ($1/steps_per_epoch):3 with lines lw 1.5 title 'M = 1 (p = 0.5)', \
     '' using ($1/steps_per_epoch):4 with lines lw 1.5 title 'M = 8 (p = 0.5)'
unset logscale y
set ylabel 'validation error (%)'
set xlabel 'epoch'
plot d.'val_error_by_epoch.csv' using 1:(100*$2) with linespoints lw 1.5 pt 7 ps 0.5 title 'no dropout', \
     '' using 1:(100*$3) with linespoints lw 1.5 pt 7 ps 0.5 title 'M = 1', \
     '' using 1:(100*$4) with linespoints lw 1.5 pt 7 ps 0.5 title 'M = 8'
unset multiplot
