# Plots every column of a CSV file against its first column (header row = legend titles).
# Called by examples/plot_csv.sh with -e "file='...'; out='...'; ncol=N; ttl='...'; ylab='...'".
set datafile separator ','
set datafile missing 'nan'
set terminal pngcairo size 800,450 font 'sans,11' noenhanced
set output out
set title ttl
set key outside right top autotitle columnhead
set grid
set xlabel system(sprintf("head -1 '%s' | cut -d, -f1", file))
set ylabel ylab
plot for [i=2:ncol] file using 1:i with linespoints pointsize 0.5 linewidth 1.5
