# benchmarks/chart.gp — the chart of a run: throughput by message size, ipc's channels beside the
# alternatives. Usage: gnuplot -c chart.gp DATA OUTPUT.png "TITLE"  (DATA from bench_report --chart-data)
data = ARG1
set terminal pngcairo size 1500,620 font "sans,11" noenhanced
set output ARG2
set datafile missing "?"
set logscale xy
set xrange [6:1400000]
set xtics ("8 B" 8, "64 B" 64, "1 KiB" 1024, "64 KiB" 65536, "1 MiB" 1048576)
set grid xtics ytics mytics lc rgb "#dddddd"
set xlabel "message size"
# One style per data column: ipc's channels (3-5) solid and thick, the alternatives (6-10) dashed,
# memcpy in one process (11), the limit of any copy, dotted.
set style line 3 lc rgb "#1f5fbf" lw 3 pt 7 ps 0.8
set style line 4 lc rgb "#2ca02c" lw 3 pt 7 ps 0.8
set style line 5 lc rgb "#17becf" lw 3 pt 7 ps 0.8
set style line 6 lc rgb "#d62728" lw 1.5 dt 2 pt 5 ps 0.7
set style line 7 lc rgb "#ff7f0e" lw 1.5 dt 2 pt 5 ps 0.7
set style line 8 lc rgb "#9467bd" lw 1.5 dt 2 pt 5 ps 0.7
set style line 9 lc rgb "#8c564b" lw 1.5 dt 4 pt 9 ps 0.7
set style line 10 lc rgb "#e377c2" lw 1.5 dt 4 pt 9 ps 0.7
set style line 11 lc rgb "#7f7f7f" lw 1.5 dt 3 pt 1 ps 0.7
set multiplot layout 1,2 title ARG3 font "sans,13"
set key bottom left font "sans,10"
set title "messages per second (higher is better)"
set ylabel "messages/s"
set format y "%.0s%c"
plot for [i=3:11] data using 1:(column(i)/$1) with linespoints ls i title columnhead(i)
set title "bytes per second (higher is better)"
set ylabel "bytes/s"
set format y "%.0s%cB/s"
set key bottom right
plot for [i=3:11] data using 1:(column(i)) with linespoints ls i title columnhead(i)
unset multiplot
