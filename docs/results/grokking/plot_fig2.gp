set terminal pngcairo size 1100,800 font ",10"
set output 'docs/img/grokking_softmax_fig2_accurate.png'
set datafile separator ','
set multiplot layout 3,1 title "Float32 softmax, Figure 2 settings (lr 5e-4, {/Symbol b}_2 0.99, eps 1e-30): regula's accurate gradient vs PyTorch's float32 arithmetic"
set key top left
set logscale y
set format y "10^{%L}"
set ylabel 'training loss'
plot 'docs/results/grokking/softmax_fig2_accurate.csv' using 1:2 with lines lw 1.5 title 'accurate (label element -{/Symbol S}_{j!=y} p_j)', \
     'docs/results/grokking/softmax_fig2_torch_float32.csv' using 1:2 with lines lw 1.5 title 'PyTorch float32 (p_y - 1)'
unset logscale y
set format y "%g"
set yrange [-5:50]
set ylabel 'median margin z_y - max_{j!=y} z_j'
plot 'docs/results/grokking/softmax_fig2_accurate.csv' using 1:8 with lines lw 1.5 title 'accurate', \
     'docs/results/grokking/softmax_fig2_torch_float32.csv' using 1:8 with lines lw 1.5 title 'PyTorch float32', \
     16.64 with lines dt 2 lc rgb 'gray' title 'ln(2/{/Symbol e}): float absorbs one term'
set ylabel 'fraction'
set xlabel 'epoch'
set yrange [0:1.05]
plot 'docs/results/grokking/softmax_fig2_accurate.csv' using 1:5 with lines lw 1.5 title 'softmax collapse, accurate', \
     'docs/results/grokking/softmax_fig2_torch_float32.csv' using 1:5 with lines lw 1.5 title 'softmax collapse, PyTorch float32', \
     'docs/results/grokking/softmax_fig2_accurate.csv' using 1:4 with lines lw 1 title 'test accuracy, accurate', \
     'docs/results/grokking/softmax_fig2_torch_float32.csv' using 1:4 with lines lw 1 title 'test accuracy, PyTorch float32'
unset multiplot
