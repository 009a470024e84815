-- The run's hour of the 1-hour downsampled table (bounds bound by the server as $start/$end).
SELECT time, room, temp_mean, temp_min, temp_max, hum_mean, co_max
FROM home_1h
WHERE time >= $start AND time < $end
ORDER BY time, room
